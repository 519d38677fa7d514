"""`down` destroys only what the user meant to destroy: a training still going needs `--stop`, and
outputs never downloaded need `--discard-outputs` (or, on a terminal, an answer), with or without a
terminal; the refusals are exit 2 and name both ways out, as commands that work as printed."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import make_code, only_folder

STEADY = """
import os, time
open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "model.txt"), "w").write("weights")
print("saved", flush=True)
while True:
    time.sleep(0.1)
"""


def _state(trainrig, rid: str) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(trainrig("status", rid, "--json").out)


def _error(done) -> str:  # type: ignore[no-untyped-def]
    [line] = [ln for ln in done.err.splitlines() if ln.startswith("error:")]
    return line


def test_without_a_terminal_down_refuses_a_training_then_undownloaded_outputs(trainrig, tmp_path):
    code = make_code(tmp_path / "keepme", STEADY)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    rid = "keepme-none"
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        going = trainrig("down", rid)  # the fixture's stdin is no terminal
        assert going.code == 2
        assert f"`trainrig down {rid} --stop`" in _error(going) and f"`trainrig logs {rid} -f`" in _error(going)
        state = _state(trainrig, rid)
        assert state["run"]["state"] == "started" and not state["status"]["outcome"]  # untouched, still training

        stopped = trainrig("down", rid, "--stop")
        assert stopped.code == 2
        line = _error(stopped)
        assert f"`trainrig download {rid}`" in line and f"`trainrig down {rid} --stop --discard-outputs`" in line
        state = _state(trainrig, rid)
        assert state["run"]["state"] == "finished" and state["status"]["outcome"] == "stopped"

        got = trainrig("download", rid, "--outputs", str(tmp_path / "out"))  # the first way out, as printed
        assert got.code == 0, got.err
        assert (only_folder(tmp_path / "out") / "outputs" / "model.txt").read_text() == "weights"
        done = trainrig("down", rid)
        assert done.code == 0, done.err
        assert _state(trainrig, rid)["run"]["state"] == "destroyed"
    finally:
        trainrig("down", rid, "--stop", "--discard-outputs")


def test_discard_outputs_is_the_other_way_out(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "dropme", STEADY)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    rid = "dropme-none"
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        done = trainrig("down", rid, "--stop", "--discard-outputs")
        assert done.code == 0, done.err
        assert _state(trainrig, rid)["run"]["state"] == "destroyed"
        assert not (state_home / "runs" / rid / "sandbox").exists()
    finally:
        trainrig("down", rid, "--stop", "--discard-outputs")


def test_a_run_following_its_training_is_not_undercut_by_a_refused_down(trainrig, popen_trainrig, tmp_path):
    code = make_code(tmp_path / "undercut", """
        import os, time
        for i in range(30):
            print(f"step {i}", flush=True)
            time.sleep(0.1)
        open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "model.txt"), "w").write("done")
    """)
    run = popen_trainrig("run", str(code), "--dataset-name", "none", "--outputs", str(tmp_path / "out"))
    assert run.stdout is not None
    assert run.stdout.readline() == "step 0\n"  # training now
    refused = trainrig("down", "undercut-none")
    assert refused.code == 2
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert (only_folder(tmp_path / "out") / "outputs" / "model.txt").read_text() == "done"


def _on_a_terminal(env: dict[str, str], cwd: Path, args: list[str], answers: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run trainrig with a pseudo-terminal as stdin/stdout, answering each prompt in turn."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", *args], cwd=cwd, env=env, stdin=follower,
                            stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    seen, pending = b"", list(answers)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if pending and seen.rstrip().endswith((b"]", b"?")):
                os.write(leader, pending.pop(0).encode() + b"\n")
        return proc.wait(timeout=max(1.0, end - time.monotonic())), seen.decode(errors="replace")
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_on_a_terminal_down_asks_and_can_download_first(trainrig, env, tmp_path):
    code = make_code(tmp_path / "askme", STEADY)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    rid = "askme-none"
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        # Destroy? yes. Still training: stop it? yes. Outputs never downloaded: cancel.
        code_, screen = _on_a_terminal(env, tmp_path, ["down", rid], ["y", "y", ""])
        assert code_ == 0, screen
        assert _state(trainrig, rid)["run"]["state"] == "finished"  # stopped, not destroyed
        # Again, and download them first this time: then it is destroyed.
        code_, screen = _on_a_terminal(env, tmp_path, ["down", rid, "--outputs", str(tmp_path / "out")], ["y", "d"])
        assert code_ == 0, screen
        assert (only_folder(tmp_path / "out") / "outputs" / "model.txt").read_text() == "weights"
        assert _state(trainrig, rid)["run"]["state"] == "destroyed"
    finally:
        trainrig("down", rid, "--stop", "--discard-outputs")
