"""A multi-node spot run preempted for real on the `local` target: one node's machine is taken away
(the cloud's notice from a local imitation of GCP's metadata server, one per node, or kill -9 with no
notice at all). The run goes on on fresh machines for every node, each resuming from the last
checkpoint its own store (moto's S3) holds; with no restart left it ends `lost`, never `failed`,
nothing left running (the autouse fixture checks the processes) and `down` leaves nothing."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Callable

import pytest

from runner.remote.procs import marked
from tests.conftest import ROOT, make_bucket, make_code, manifest, only_folder, record
from tests.faults.metadata_server import metadata_server
from tests.faults.observe import checkpointing_training, wait_for
from tests.faults.observe import gone as _gone
from tests.faults.observe import kill9 as _kill9
from tests.faults.observe import steps_in as _steps_in

STEPS = 30

# Each node counts on by itself (no collective: what stops a node is trainrig alone), saving a
# checkpoint per step and one last on SIGTERM.
TRAIN = checkpointing_training(STEPS, 0.2)


def _wait(what: str, cond: Callable[[], bool], timeout: float = 60) -> None:
    wait_for(what, cond, timeout)


def _node_dir(state_home: Path, rid: str, k: int) -> Path:
    base = state_home / "runs" / rid
    return base / f"node-{k}" if k else base


def _run_dir(state_home: Path, rid: str, k: int) -> Path:
    return _node_dir(state_home, rid, k) / "sandbox" / "runs" / rid


def _status(state_home: Path, rid: str, k: int) -> dict:
    try:
        return json.loads((_run_dir(state_home, rid, k) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _logged(state_home: Path, rid: str, k: int, text: str) -> Callable[[], bool]:
    def seen() -> bool:
        try:
            return text in (_run_dir(state_home, rid, k) / "logs" / "train.log").read_text()
        except OSError:
            return False
    return seen






def _machine_pids(state_home: Path, rid: str, k: int) -> list[int]:
    """Node k's machine: its SSH server, its supervisor and its training."""
    server = json.loads((_node_dir(state_home, rid, k) / "server.json").read_text())["pid"]
    s = _status(state_home, rid, k)
    return [p for p in (server, s.get("supervisor_pid"), s.get("training_pid")) if p]






def _spot_run(popen_trainrig, code: Path, rid: str, bucket: str, out: Path, restarts: int = 1):  # type: ignore[no-untyped-def]
    name, dataset = rid.split("-")
    return popen_trainrig("run", str(code), "--code-name", name, "--dataset-name", dataset, "--nodes", "2",
                          "--command", "python train.py", "--output-store", f"s3://{bucket}/runs",
                          "--max-restarts", str(restarts), "--sync-interval", "1s", "--outputs-from", "all",
                          "--outputs", str(out), "--max-runtime", "5m")


def _both_resumed(folder: Path, notice: bool = True) -> None:
    """Each node's log: its steps once each up to the last checkpoint its store kept, then the new
    attempt from the step after it; each node's outputs complete. With no `notice`, a machine's log
    lines after its last sync of logs are gone with it (as in any crash): what is left is a prefix."""
    for k, outputs in ((0, folder / "outputs"), (1, folder / "node-1" / "outputs")):
        log = (folder / "logs" / f"node-{k}" / "train.log").read_text()
        resumed = [int(n) for n in re.findall(r"^resumed after step (\d+)$", log, re.M)]
        assert len(resumed) == 1, (k, log)
        before, after = log.split(f"resumed after step {resumed[0]}\n")
        assert _steps_in(after) == list(range(resumed[0] + 1, STEPS)) and after.endswith("done\n"), (k, log)
        assert resumed[0] in _steps_in(before) if notice else _steps_in(before) == list(range(len(_steps_in(before)))), (k, log)
        assert sorted(p.name for p in outputs.glob("step-*.txt")) == [f"step-{i:03d}.txt" for i in range(STEPS)], k


def test_rank0_preempted_restarts_every_node_from_its_store(bucket_servers, env, popen_trainrig, tmp_path, state_home):
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    code = make_code(tmp_path / "mnspot", TRAIN)
    rid = "mnspot-zero"
    with metadata_server() as md0, metadata_server() as md1:
        env["TRAINRIG_METADATA_URL"] = f"gcp={md0.gcp_url},{md1.gcp_url}"  # node k asks the k-th
        client = _spot_run(popen_trainrig, code, rid, bucket, tmp_path / "out")
        for k in (0, 1):
            _wait(f"step 4 on node {k}", _logged(state_home, rid, k, "step 4\n"))
        pids = _machine_pids(state_home, rid, 0)
        md0.preempted = True  # rank 0's machine only: its supervisor stops its training, then tells node 1
        _wait("rank 0's supervisor's end", lambda: _gone(pids[1]), timeout=30)
        md0.preempted = False  # the next machines are not preempted
        _kill9(pids)  # then rank 0's machine goes
        _, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    folder = only_folder(tmp_path / "out")
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and [r["outcome"] for r in m["restarts"]] == ["preempted"]
    rec = record(state_home, rid)
    assert rec["state"] == "destroyed" and [r["outcome"] for r in rec["restarts"]] == ["preempted"]
    _both_resumed(folder)
    for k in (0, 1):  # node 1 too stopped with a last checkpoint, which its store kept
        log = (folder / "logs" / f"node-{k}" / "train.log").read_text()
        assert re.search(r"^resumed after step (\d+)$", log, re.M).group(1) == \
            re.search(r"^SIGTERM: last checkpoint (\d+)$", log, re.M).group(1), (k, log)


def test_node1_preempted_restarts_every_node(bucket_servers, env, popen_trainrig, tmp_path, state_home):
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    code = make_code(tmp_path / "mnone", TRAIN)
    rid = "mnone-notice"
    with metadata_server() as md0, metadata_server() as md1:
        env["TRAINRIG_METADATA_URL"] = f"gcp={md0.gcp_url},{md1.gcp_url}"
        client = _spot_run(popen_trainrig, code, rid, bucket, tmp_path / "out")
        for k in (0, 1):
            _wait(f"step 4 on node {k}", _logged(state_home, rid, k, "step 4\n"))
        pids = _machine_pids(state_home, rid, 1)
        md1.preempted = True  # node 1's machine only: its supervisor tells rank 0 "preempted"
        _wait("node 1's supervisor's end", lambda: _gone(pids[1]), timeout=30)
        md1.preempted = False
        _kill9(pids)
        _, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    folder = only_folder(tmp_path / "out")
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and [r["outcome"] for r in m["restarts"]] == ["preempted"]
    assert m["restarts"][0]["reason"].startswith("node 1: ")  # the node whose machine was taken
    _both_resumed(folder)


def test_node1_killed_without_notice_restarts_every_node(bucket_servers, env, popen_trainrig, tmp_path, state_home):
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    code = make_code(tmp_path / "mngone", TRAIN)
    rid = "mngone-nonotice"
    client = _spot_run(popen_trainrig, code, rid, bucket, tmp_path / "out")
    for k in (0, 1):
        _wait(f"step 4 on node {k}", _logged(state_home, rid, k, "step 4\n"))
    _kill9(_machine_pids(state_home, rid, 1))  # node 1's machine vanishes: nobody tells anyone
    _, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    folder = only_folder(tmp_path / "out")
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and [r["outcome"] for r in m["restarts"]] == ["lost"]
    assert m["restarts"][0]["reason"].startswith("node 1: ")
    _both_resumed(folder, notice=False)


def test_node1_lost_with_no_restart_left_ends_lost_on_both(trainrig, popen_trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "mnlast", TRAIN.replace(f"while step < {STEPS}", "while step < 10000"))
    rid = "mnlast-none"
    assert trainrig("up", str(code), "--code-name", "mnlast", "--dataset-name", "none", "--nodes", "2",
                    "--command", "python train.py", "--max-runtime", "5m").code == 0
    try:
        client = popen_trainrig("start", rid)
        for k in (0, 1):
            _wait(f"step 2 on node {k}", _logged(state_home, rid, k, "step 2\n"))
        _kill9(_machine_pids(state_home, rid, 1))
        _, err = client.communicate(timeout=60)
        assert client.returncode == 1, err
        zero = _status(state_home, rid, 0)
        assert zero["outcome"] == "stopped" and _gone(zero["supervisor_pid"]) and _gone(zero["training_pid"])
        rec = record(state_home, rid)
        assert (rec["state"], rec["outcome"]) == ("finished", "lost") and rec["reason"].startswith("node 1: ")
    finally:
        done = trainrig("down", rid, "--discard-outputs")
        assert done.code == 0, done.err
        assert record(state_home, rid)["state"] == "destroyed"
        assert not (state_home / "runs" / rid / "sandbox").exists() and not (state_home / "runs" / rid / "node-1").exists()


def test_node1_lost_with_nobody_following_stops_rank0_on_the_machines(trainrig, tmp_path, state_home):
    """No follower, no restart budget: rank 0's supervisor finds node 1's silent (its heartbeat to
    node 1's supervisor goes unanswered) and stops its training; `status` then records the run lost."""
    code = make_code(tmp_path / "mnalone", TRAIN.replace(f"while step < {STEPS}", "while step < 10000"))
    rid = "mnalone-none"
    assert trainrig("up", str(code), "--code-name", "mnalone", "--dataset-name", "none", "--nodes", "2",
                    "--command", "python train.py", "--max-runtime", "5m").code == 0
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        for k in (0, 1):  # 3 s of training: rank 0 has heard node 1's supervisor answer at least once
            _wait(f"step 15 on node {k}", _logged(state_home, rid, k, "step 15\n"))
        _kill9(_machine_pids(state_home, rid, 1))
        _wait("rank 0's end", lambda: _status(state_home, rid, 0).get("outcome") is not None, timeout=30)
        zero = _status(state_home, rid, 0)
        assert zero["outcome"] == "stopped" and zero["reason"].startswith("node 1 was lost")
        st = trainrig("status", rid, "--json")
        assert st.code == 0, st.err
        report = json.loads(st.out)
        assert [(n["rank"], n["outcome"]) for n in report["nodes"]] == [(0, "stopped"), (1, "lost")]
        assert (report["run"]["state"], report["run"]["outcome"]) == ("finished", "lost")
    finally:
        done = trainrig("down", rid, "--discard-outputs")
        assert done.code == 0, done.err
        assert not (state_home / "runs" / rid / "sandbox").exists() and not (state_home / "runs" / rid / "node-1").exists()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed here: `pip install torch==2.13.0` (as .ci/run does) runs this test")
def test_node1_lost_mid_torchrun_restarts_every_node_not_failed(bucket_servers, env, popen_trainrig, tmp_path, state_home):
    """With a collective, node 1's loss fails rank 0's torchrun too: the run is the restartable loss
    (`lost`), not that failure, and goes on on fresh machines."""
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    rid = "ddplost-none"
    client = popen_trainrig("run", str(ROOT / "examples" / "ddp"), "--code-name", "ddplost", "--dataset-name", "none",
                            "--nodes", "2", "--launcher", "torchrun", "--env", "STEPS=30", "--output-store",
                            f"s3://{bucket}/runs", "--max-restarts", "1", "--sync-interval", "1s", "--outputs-from", "all",
                            "--outputs", str(tmp_path / "out"), "--max-runtime", "5m")
    for k in (0, 1):
        _wait(f"node {k}'s all-reduces", _logged(state_home, rid, k, "step 3\n"))
    server, supervisor = _machine_pids(state_home, rid, 1)[:2]
    _kill9([server, supervisor, *marked(str(_run_dir(state_home, rid, 1)))])  # torchrun and its worker too
    _, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    folder = only_folder(tmp_path / "out")
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and [r["outcome"] for r in m["restarts"]] == ["lost"]
    assert m["restarts"][0]["reason"].startswith("node 1: ")
    for outputs in (folder / "outputs", folder / "node-1" / "outputs"):
        assert json.loads((outputs / "allreduce.json").read_text())["sum"] == 3.0
