"""One node of a multi-node run killed for real (SIGKILL to its training, found by the run's mark in
its processes' environment): the run fails on every node, with or without a follower, and `down`
leaves nothing (the autouse fixture checks the processes)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest

from runner.journal import Journal
from runner.lifecycle import Lifecycle
from runner.remote.procs import marked
from runner.remote.status import Status, read_status
from runner.states import MachinePhase, RunState
from tests.conftest import ROOT, make_code, record

TICKER = """
import itertools, time
for i in itertools.count():
    print(f"tick {i}", flush=True)
    time.sleep(0.1)
"""


def _run_dir(state_home: Path, rid: str, node: int) -> Path:
    base = state_home / "runs" / rid
    return (base / f"node-{node}" if node else base) / "sandbox" / "runs" / rid


def _status(state_home: Path, rid: str, node: int) -> Status | None:
    try:
        return read_status(str(_run_dir(state_home, rid, node) / "status.json"))
    except (OSError, ValueError):
        return None


def _wait(what: str, until: Callable[[], bool], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not until():
        if time.monotonic() > end:
            pytest.fail(f"never saw {what}")
        time.sleep(0.05)


def _logged(state_home: Path, rid: str, node: int, text: bytes) -> Callable[[], bool]:
    def seen() -> bool:
        try:
            return text in (_run_dir(state_home, rid, node) / "logs" / "train.log").read_bytes()
        except OSError:
            return False
    return seen


def _kill_training(state_home: Path, rid: str, node: int) -> None:
    """SIGKILL every process of the node's run but its supervisor: the training and what it started."""
    run_dir = _run_dir(state_home, rid, node)
    status = _status(state_home, rid, node)
    assert status is not None and status.phase == "training"
    victims = [pid for pid in marked(str(run_dir)) if pid != status.supervisor_pid]
    assert victims
    for pid in victims:
        os.kill(pid, signal.SIGKILL)


def _both_failed(state_home: Path, rid: str) -> list[Status]:
    statuses = [_status(state_home, rid, k) for k in (0, 1)]
    assert all(s is not None and s.done for s in statuses), statuses
    assert [s.outcome for s in statuses] == ["failed", "failed"]  # type: ignore[union-attr]
    return statuses  # type: ignore[return-value]


def _down_leaves_nothing(trainrig, state_home: Path, rid: str) -> None:  # type: ignore[no-untyped-def]
    done = trainrig("down", rid, "--discard-outputs")
    assert done.code == 0, done.err
    assert record(state_home, rid)["state"] == "destroyed"
    assert not (state_home / "runs" / rid / "sandbox").exists() and not (state_home / "runs" / rid / "node-1").exists()


def test_a_node_killed_with_nobody_following_stops_the_other_on_the_machines(trainrig, tmp_path, state_home):
    """No torch and no collective: node 0 would tick on forever by itself; only the supervisors'
    message (runner/remote/peers.py) can stop it."""
    code = make_code(tmp_path / "ticker", TICKER)
    rid = "ticker-none"
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py",
                    "--max-runtime", "5m").code == 0
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        for k in (0, 1):
            _wait(f"node {k} ticking", _logged(state_home, rid, k, b"tick 3\n"))
        _kill_training(state_home, rid, 1)
        _wait("node 0's run to end", lambda: bool((s := _status(state_home, rid, 0)) and s.done), timeout=60)
        zero, one = _both_failed(state_home, rid)
        assert one.exit_code == -signal.SIGKILL
        assert zero.reason.startswith("node 1 failed")  # it names the node that failed
        report = asyncio.run(Lifecycle(Journal(state_home)).status(rid))
        assert [(s.done, s.outcome) for s in report.nodes] == [(True, "failed"), (True, "failed")]  # type: ignore[union-attr]
        assert record(state_home, rid)["outcome"] == "failed"  # nobody followed: `status` recorded it
    finally:
        _down_leaves_nothing(trainrig, state_home, rid)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed here: `pip install torch==2.13.0` (as .ci/run does) runs this test")
def test_a_node_killed_mid_torchrun_fails_the_followed_run_on_both_nodes(trainrig, popen_trainrig, state_home):
    rid = "ddpkill-none"
    assert trainrig("up", str(ROOT / "examples" / "ddp"), "--code-name", "ddpkill", "--dataset-name", "none",
                    "--nodes", "2", "--launcher", "torchrun", "--env", "STEPS=600", "--max-runtime", "5m").code == 0
    try:
        client = popen_trainrig("start", rid)
        for k in (0, 1):
            _wait(f"node {k}'s first all-reduce", _logged(state_home, rid, k, b"step 2\n"))
        _kill_training(state_home, rid, 1)
        _, err = client.communicate(timeout=90)
        assert client.returncode == 1, err
        _both_failed(state_home, rid)
        assert record(state_home, rid)["outcome"] == "failed"
    finally:
        _down_leaves_nothing(trainrig, state_home, rid)


def test_down_refuses_while_any_node_still_trains_not_only_rank_0(trainrig, tmp_path, state_home):
    # Rank 0 ends at once and well; node 1 trains on. `down` without --stop must see node 1.
    code = make_code(tmp_path / "oneleft", "import os, time\nif os.environ['TRAINRIG_NODE_RANK'] != '0':\n    time.sleep(60)\n")
    rid = "oneleft-none"
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py").code == 0
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        _wait("rank 0 done, node 1 training", lambda: (_status(state_home, rid, 0) or Status(run_id=rid)).done
              and (_status(state_home, rid, 1) or Status(run_id=rid)).phase == MachinePhase.TRAINING)
        assert trainrig("down", rid, "--discard-outputs").code == 2
        assert Journal(state_home).load(rid).state != RunState.DESTROYED  # nothing destroyed
        assert (_status(state_home, rid, 1) or Status(run_id=rid)).phase == MachinePhase.TRAINING
    finally:
        assert trainrig("down", rid, "--stop", "--discard-outputs").code == 0
