"""The supervisor and the preemption notice, run for real (a detached supervisor and its training, no
SSH; the notice from a local imitation of GCP's metadata server): the training gets SIGTERM and
writes its last checkpoint, the final sync runs, the outcome is `preempted`; and a SIGTERM from the
machine's own shutdown before the next poll is a preemption too, while one with no notice is a stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from runner.remote.config import SupervisorConfig
from runner.remote.status import read_status
from tests.faults.metadata_server import metadata_server
from tests.runner.remote.test_supervisor_telemetry import _launch

TRAIN = """
import os, signal, sys, time
import trainrig_helpers as th
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
for step in range(400):
    time.sleep(0.05)
    if stop:
        th.save_checkpoint(step, lambda p: open(p, "w").write(str(step)), suffix=".txt")
        print("saved on SIGTERM", flush=True)
        sys.exit(143)
    print(f"step {step}", flush=True)
"""


def _start(run_dir: Path, state_home: Path, url: str, poll_s: float) -> None:
    (run_dir / "code").mkdir(parents=True)
    (run_dir / "code" / "train.py").write_text(TRAIN)
    _launch(run_dir, SupervisorConfig(run_id="preempt-test", venv_cache=str(state_home / "cache" / "venvs"), module="train",
                                      preemption_watch="gcp", metadata_url=url, preemption_poll_s=poll_s, sync_interval_s=3600))


def _wait_training(run_dir: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while "step 3\n" not in _text(run_dir / "logs" / "train.log"):
        assert time.monotonic() < deadline, "the training never started"
        time.sleep(0.05)
    return read_status(str(run_dir / "status.json"))


def _wait_done(run_dir: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 40  # GCP's grace and some
    while not (status := read_status(str(run_dir / "status.json"))).done:
        assert time.monotonic() < deadline, "the supervisor did not finish"
        time.sleep(0.05)
    return status


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_a_notice_stops_the_training_with_a_grace_and_the_outcome_is_preempted(tmp_path, state_home):
    run_dir = tmp_path / "run"
    with metadata_server() as md:
        _start(run_dir, state_home, md.gcp_url, 0.2)
        _wait_training(run_dir)
        md.preempted = True
        status = _wait_done(run_dir)
    assert (status.outcome, status.preemption, status.final_sync_ok) == ("preempted", "instance/preempted: TRUE", True)
    assert "saved on SIGTERM" in _text(run_dir / "logs" / "train.log")
    synced = os.listdir(run_dir / "store" / "outputs" / "checkpoints")  # the last checkpoint went out with the final sync
    assert len(synced) == 1 and synced[0].startswith("checkpoint-")


@pytest.mark.parametrize("noticed, outcome", [(True, "preempted"), (False, "stopped")])
def test_a_sigterm_before_the_next_poll_is_a_preemption_only_with_a_notice(noticed, outcome, tmp_path, state_home):
    run_dir = tmp_path / "run"
    with metadata_server() as md:
        _start(run_dir, state_home, md.gcp_url, 3600)  # the watcher never polls in time
        status = _wait_training(run_dir)
        md.preempted = noticed
        os.kill(status.supervisor_pid, signal.SIGTERM)  # the machine's shutdown reaches the supervisor first
        status = _wait_done(run_dir)
    assert status.outcome == outcome
