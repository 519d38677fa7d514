"""A connection lost while the code is uploaded (the machine's SSH server killed, or the machine-side
tools process) ends `start`/`run` with a non-zero exit and a retry command that works as printed;
never exit 0, never a run that looks started."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runner.journal import Journal
from runner.remote.procs import command_lines
from tests.conftest import make_code, only_folder
from tests.faults.observe import tree_bytes

BIG = 96 << 20  # incompressible: takes the upload a while, so the fault lands in its middle


def _big_code(folder: Path) -> Path:
    code = make_code(folder, """
        import os
        size = os.path.getsize("weights.bin")
        print(f"trained on {size}", flush=True)
        open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "size.txt"), "w").write(str(size))
    """)
    with open(code / "weights.bin", "wb") as f:
        for _ in range(BIG >> 20):
            f.write(os.urandom(1 << 20))
    return code


def _arrived(sandbox: Path, rid: str) -> int:
    """Bytes of the code that reached the machine so far (any file name, finished or not)."""
    return tree_bytes(sandbox / "runs" / rid / "code")


def _receivers(rid: str) -> list[int]:
    """The machine-side processes receiving this run's upload."""
    return [pid for pid, argv in command_lines()
            if b"receive" in argv and any(a.endswith(f"/runs/{rid}/code".encode()) for a in argv)]


def _kill_mid_upload(client: subprocess.Popen, state_home: Path, rid: str, what: str) -> None:
    sandbox = state_home / "runs" / rid / "sandbox"
    end = time.monotonic() + 60
    while _arrived(sandbox, rid) < (8 << 20):
        assert client.poll() is None, client.communicate()
        assert time.monotonic() < end, "the upload never got going"
        time.sleep(0.005)
    if what == "server":
        pid = Journal(state_home).load(rid).local_server_pid
        assert pid
        os.kill(pid, signal.SIGKILL)
    else:
        [pid] = _receivers(rid)
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("what", ["server", "tools"])
def test_start_whose_upload_loses_its_connection_fails_and_start_again_works(what, trainrig, popen_trainrig, tmp_path, state_home):
    code = _big_code(tmp_path / f"cut{what}")
    rid = f"cut{what}-none"
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        start = popen_trainrig("start", rid)
        _kill_mid_upload(start, state_home, rid, what)
        out, err = start.communicate(timeout=120)
        assert start.returncode == 1, (out, err)
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and f"`trainrig start {rid}`" in errors[0], err
        assert out == ""  # no training line: it never started
        assert Journal(state_home).load(rid).state == "up"
        again = trainrig("start", rid)  # the retry, as printed (the local server is started anew)
        assert again.code == 0, again.err
        assert again.out == f"trained on {BIG}\n"
    finally:
        trainrig("down", rid, "--stop", "--discard-outputs")


def test_run_whose_upload_loses_its_connection_destroys_and_says_run_again(trainrig, popen_trainrig, tmp_path, state_home):
    code = _big_code(tmp_path / "cutrun")
    rid = "cutrun-none"
    run = popen_trainrig("run", str(code), "--dataset-name", "none", "--outputs", str(tmp_path / "out"))
    try:
        _kill_mid_upload(run, state_home, rid, "server")
        out, err = run.communicate(timeout=120)
        assert run.returncode == 1, (out, err)
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and f"`trainrig run {rid} --outputs {tmp_path / 'out'}`" in errors[0], err
        assert Journal(state_home).load(rid).state == "destroyed"  # `run` leaves nothing of a failed start
        again = trainrig(*errors[0].split("`")[1].split()[1:])  # the retry, as printed
        assert again.code == 0, again.err
        assert (only_folder(tmp_path / "out") / "outputs" / "size.txt").read_text() == str(BIG)
    finally:
        trainrig("down", rid, "--stop", "--discard-outputs")
