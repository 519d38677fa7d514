"""Disk full on the machine, for real: trainrig's state folder (and so the local target's sandbox,
the machine's disk) on a tmpfs of a few MB that the training fills.

The outcome recorded is the true one, the training's log is kept, a final sync that did not finish
is recorded and ends `run` with exit 1 keeping the machine; the printed `trainrig download` then
gets every file once space is freed, and `down` on the still full disk frees it, leaving nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from runner.journal import Journal
from runner.remote.procs import alive
from tests.conftest import Done, make_code, only_folder

DISK = "6m"
NOT_FULL_AFTER = 8  # output files the full disk lets the crashing training write, at least


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(home)], capture_output=True, text=True)
        why = r.stderr.strip()
    except FileNotFoundError:
        r, why = None, "no mount command"
    if r is None or r.returncode != 0:
        pytest.skip(f"cannot mount a {DISK} tmpfs to fill ({why or 'not permitted'}): these tests need root (or CAP_SYS_ADMIN)")
    try:
        yield home
    finally:
        _down_whatever_is_left(home)
        subprocess.run(["umount", "-l", str(home)], check=False)


def _down_whatever_is_left(home: Path) -> None:
    """A failed assertion must not leave a server or a supervisor behind (nor keep the mount busy)."""
    (home / "filler").unlink(missing_ok=True)
    for record in Journal(home).all():
        if record.state != "destroyed":
            subprocess.run([sys.executable, "-m", "tui.cli", "down", record.run_id, "-y", "--discard-outputs", "--stop"],
                           env=_env(home), capture_output=True, timeout=120)


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "TRAINRIG_HOME": str(home), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def env(small_disk: Path) -> dict[str, str]:
    """The `trainrig` fixture's environment, with the state folder on the small disk."""
    return _env(small_disk)


def _fill(path: Path) -> None:
    """Write `path` until the disk refuses another byte."""
    with open(path, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _files(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _status(trainrig, rid: str) -> dict:  # type: ignore[no-untyped-def]
    done = trainrig("status", rid, "--json")
    assert done.code == 0, done.err
    return json.loads(done.out)


def _printed_download(done: Done, rid: str) -> list[str]:
    """The `trainrig download ...` command the failed `run` printed, as words."""
    text = done.out + done.err
    start = text.index(f"`trainrig download {rid}")
    return shlex.split(text[start + 1:text.index("`", start + 1)])[1:]


def _run_dir(home: Path, rid: str) -> Path:
    return home / "runs" / rid / "sandbox" / "runs" / rid


def _pids(home: Path, rid: str, status: dict) -> list[int]:
    record = Journal(home).load(rid)
    return [p for p in (record.local_server_pid, status["supervisor_pid"], status["training_pid"]) if p]


def _down_on_full_disk_leaves_nothing(trainrig, home: Path, rid: str, pids: list[int], reserved: bool) -> None:  # type: ignore[no-untyped-def]
    """`down` with the state folder on the full disk; without `reserved`, as for a run whose record has
    no reserved slot (made by an older trainrig): then nothing can be recorded before the space is freed."""
    if not reserved:
        (home / "runs" / rid / "record.json.reserve").unlink()
    _fill(home / "filler")
    assert _free_bytes(home) < 64 << 10
    done = trainrig("down", rid, "-y")
    assert done.code == 0, done.out + done.err
    assert not (home / "runs" / rid / "sandbox").exists()
    assert not [p for p in pids if alive(p)]
    (home / "filler").unlink()
    assert Journal(home).load(rid).state == "destroyed"


def test_training_crashed_by_a_full_disk_keeps_its_machine_log_and_every_file(trainrig, small_disk: Path, tmp_path: Path) -> None:
    home, rid = small_disk, "fill-crash"
    # The training leaves itself ~640 KB, then writes 30 files of 50 KB: the disk fills half-way.
    code = make_code(tmp_path / "fill", """
        import os
        out = os.environ["TRAINRIG_OUTPUT_DIR"]
        st = os.statvfs(out)
        with open(os.environ["FILLER"], "wb") as f:
            f.write(b"\\0" * (st.f_bavail * st.f_frsize - 640_000))
        for i in range(30):
            with open(os.path.join(out, "f%02d.bin" % i), "wb") as f:
                f.write(os.urandom(50_000))
            print("wrote", i, flush=True)
    """)
    outputs = tmp_path / "got"
    done = trainrig("run", str(code), "--code-name", "fill", "--dataset-name", "crash", "--outputs", str(outputs),
                    "--env", f"FILLER={home / 'filler'}")
    assert done.code == 1, done.out + done.err

    # The true outcome, recorded on the full disk; the machine kept.
    status = _status(trainrig, rid)
    s = status["status"]
    assert s["outcome"] == "failed" and s["exit_code"] not in (0, None)
    assert s["phase"] == "finished" and s["final_sync_ok"] is False and s["sync_error"]
    assert status["run"]["state"] == "finished"
    run_dir = _run_dir(home, rid)
    assert run_dir.is_dir() and not outputs.exists()
    on_machine = _files(run_dir / "outputs")
    assert len(on_machine) >= NOT_FULL_AFTER and len(on_machine) < 30
    log = (run_dir / "logs" / "train.log").read_bytes()
    wrote = [int(line.split()[1]) for line in log.decode().splitlines() if line.startswith("wrote ")]
    assert wrote == list(range(len(wrote))) and len(wrote) >= NOT_FULL_AFTER - 1

    # Space freed, the command printed gets every file the training wrote, and its whole log.
    (home / "filler").unlink()
    again = trainrig(*_printed_download(done, rid))
    assert again.code == 0, again.out + again.err
    folder = only_folder(outputs)
    assert _files(folder / "outputs") == on_machine
    assert (folder / "logs" / "train.log").read_bytes() == log
    assert _status(trainrig, rid)["status"]["final_sync_ok"] is True

    _down_on_full_disk_leaves_nothing(trainrig, home, rid, _pids(home, rid, s), reserved=False)


def test_training_that_succeeded_but_whose_final_sync_cannot_finish_is_no_success(trainrig, small_disk: Path, tmp_path: Path) -> None:
    home, rid = small_disk, "fill-sync"
    # 30 files of 40 KB, then the disk filled to the last byte: the last copy of outputs has no room.
    code = make_code(tmp_path / "fill", """
        import os
        out = os.environ["TRAINRIG_OUTPUT_DIR"]
        for i in range(30):
            with open(os.path.join(out, "f%02d.bin" % i), "wb") as f:
                f.write(os.urandom(40_000))
            print("wrote", i, flush=True)
        with open(os.environ["FILLER"], "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\\0" * 4096)
            except OSError:
                pass
    """)
    outputs = tmp_path / "got"
    done = trainrig("run", str(code), "--code-name", "fill", "--dataset-name", "sync", "--outputs", str(outputs),
                    "--env", f"FILLER={home / 'filler'}")
    assert done.code == 1, done.out + done.err

    s = _status(trainrig, rid)["status"]
    assert s["outcome"] == "succeeded" and s["exit_code"] == 0
    assert s["final_sync_ok"] is False and "outputs" in s["sync_error"]
    run_dir = _run_dir(home, rid)
    on_machine = _files(run_dir / "outputs")
    assert len(on_machine) == 30

    # Following it again says so too: no exit 0 while the outputs are on the machine only.
    assert trainrig("logs", rid, "-f").code == 1
    # Without freeing space, download says the sync still cannot finish: exit 1, nothing half done.
    still = trainrig(*_printed_download(done, rid))
    assert still.code == 1, still.out + still.err
    assert _printed_download(still, rid) == _printed_download(done, rid)  # and says how to go on
    assert not outputs.exists() or not any(outputs.iterdir())

    (home / "filler").unlink()
    again = trainrig(*_printed_download(done, rid))
    assert again.code == 0, again.out + again.err
    folder = only_folder(outputs)
    assert _files(folder / "outputs") == on_machine
    assert (folder / "logs" / "train.log").read_bytes() == (run_dir / "logs" / "train.log").read_bytes()

    _down_on_full_disk_leaves_nothing(trainrig, home, rid, _pids(home, rid, s), reserved=True)
