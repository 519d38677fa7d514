"""`trainrig status RUN --json` of a real 2-node run on the `local` target: every node, rank order,
with its address, phase and outcome, while it trains and once it is stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import make_code, record
from tests.faults.test_nodes_fail import TICKER


def _ticking(state_home: Path, rid: str, k: int) -> bool:
    base = state_home / "runs" / rid
    log = (base / f"node-{k}" if k else base) / "sandbox" / "runs" / rid / "logs" / "train.log"
    try:
        return b"tick 3\n" in log.read_bytes()
    except OSError:
        return False


def test_status_json_shows_every_node(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "stnodes", TICKER)
    rid = "stnodes-none"
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py",
                    "--max-runtime", "5m").code == 0
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        end = time.monotonic() + 60
        while not (_ticking(state_home, rid, 0) and _ticking(state_home, rid, 1)):
            assert time.monotonic() < end, "the nodes never ticked"
            time.sleep(0.05)
        addresses = [f"{m['user']}@{m['host']}:{m['port']}" for m in record(state_home, rid)["nodes"]]
        assert len(set(addresses)) == 2
        st = trainrig("status", rid, "--json")
        assert st.code == 0, st.err
        assert [(n["rank"], n["address"], n["readable"], n["phase"], n["outcome"]) for n in json.loads(st.out)["nodes"]] == [
            (0, addresses[0], True, "training", None), (1, addresses[1], True, "training", None)]
        assert trainrig("status", rid).code == 0  # the same, for a person
        assert trainrig("stop", rid).code == 0
        st = trainrig("status", rid, "--json")
        nodes = json.loads(st.out)["nodes"]
        assert [(n["rank"], n["phase"], n["outcome"]) for n in nodes] == [(0, "finished", "stopped"), (1, "finished", "stopped")]
        assert all(n["exit_code"] is not None for n in nodes)
    finally:
        assert trainrig("down", rid, "--discard-outputs").code == 0
    one = trainrig("status", rid, "--json")  # down: no machine, no nodes to show
    assert one.code == 0 and json.loads(one.out)["nodes"] == []
