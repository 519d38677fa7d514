"""The supervisor's telemetry, run for real (a detached supervisor and its training, no SSH): the
samples land in logs/telemetry.jsonl, and a nearly full disk is named in the status while the
training runs and in the reason when it fails."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from runner.remote.config import SupervisorConfig
from runner.remote.status import read_status
from runner.remote.telemetry import Sample
from tests.conftest import ROOT


def _launch(run_dir: Path, config: SupervisorConfig) -> None:
    code = "import sys; from runner.remote.supervisor import launch; launch(sys.argv[1], sys.argv[2])"
    done = subprocess.run([sys.executable, "-c", code, str(run_dir), config.to_json()], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_nearly_full_disk_is_in_the_status_before_the_training_fails(tmp_path, state_home):
    run_dir = tmp_path / "run"
    (run_dir / "code").mkdir(parents=True)
    (run_dir / "code" / "train.py").write_text("import time, sys\ntime.sleep(1.5)\nsys.exit(3)\n")
    config = SupervisorConfig(
        run_id="disk-test", venv_cache=str(state_home / "cache" / "venvs"), module="train",
        telemetry_interval_s=0.2, disk_warn_below_mb=1e12,  # every disk is "nearly full" below 1 EB
    )
    _launch(run_dir, config)
    warned_while_training = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = read_status(str(run_dir / "status.json"))
        if status.phase == "training" and status.warning:
            warned_while_training = status.warning
        if status.done:
            break
        time.sleep(0.05)
    assert status.done, "the supervisor did not finish"
    assert "disk is nearly full" in warned_while_training
    assert status.outcome == "failed" and status.exit_code == 3
    assert "exited with code 3 (the machine's disk is nearly full" in status.reason
    samples = [Sample.from_dict(json.loads(line)) for line in (run_dir / "logs" / "telemetry.jsonl").read_text().splitlines()]
    assert len(samples) >= 4  # one at the start, several while training, one at the end
    assert [s.wall_time for s in samples] == sorted(s.wall_time for s in samples)
    assert all(s.disk_free_mb and s.memory_total_mb for s in samples)
    # Said once for the episode, not at every sample as the free megabytes change.
    log = (run_dir / "logs" / "supervisor.log").read_text() if (run_dir / "logs" / "supervisor.log").exists() else \
        (run_dir / "supervisor.log").read_text()
    assert log.count("warning: the machine's disk is nearly full") == 1, log
