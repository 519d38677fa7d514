"""`start` on a run already training changes nothing on the machine; a reader of the log that goes
away (`trainrig run ... | head`) stops the following quietly, leaves the training going, and says so
in the exit code."""

from __future__ import annotations

import json
import subprocess
import sys

from runner.journal import Journal
from tests.conftest import make_code

TICKER = """
import itertools, time
for i in itertools.count():
    print(f"tick {i}", flush=True)
    time.sleep(0.05)
"""


def test_start_on_a_run_already_training_refuses_before_uploading(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "busy", TICKER)
    rid = "busy-none"
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        (code / "train.py").write_text("print('edited')\n")
        (code / "extra.py").write_text("print('new')\n")
        again = trainrig("start", rid, "--no-follow")
        assert again.code == 2
        assert f"`trainrig logs {rid} -f`" in again.err and f"`trainrig stop {rid}`" in again.err
        on_machine = state_home / "runs" / rid / "sandbox" / "runs" / rid / "code"
        assert (on_machine / "train.py").read_text().startswith("\nimport itertools")  # the running code, untouched
        assert not (on_machine / "extra.py").exists()
    finally:
        trainrig("down", rid, "--stop", "--discard-outputs")


def test_a_reader_that_goes_away_leaves_the_training_going(env, trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "piped", TICKER)
    rid = "piped-none"
    cli = f"{sys.executable} -m tui.cli run {code} --dataset-name none --outputs {tmp_path / 'out'}"
    try:
        done = subprocess.run(["bash", "-c", f"set -o pipefail; {cli} | head -n 3"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.stdout == "tick 0\ntick 1\ntick 2\n"
        assert done.returncode == 141, done.stderr  # trainrig's own code, through pipefail
        assert not [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
        assert Journal(state_home).load(rid).state == "started"  # neither downloaded nor destroyed
        status = json.loads(trainrig("status", rid, "--json").out)["status"]
        assert status["phase"] == "training" and not status["outcome"]
    finally:
        trainrig("down", rid, "--stop", "--discard-outputs")
