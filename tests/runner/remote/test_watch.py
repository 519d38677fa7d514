"""The machine-side follower wakes on change (runner/remote/watch.py): inotify wakes its waiter within
milliseconds of a write by another process (an append, logs/ made late, a status renamed in or
saved into its reserved slot on a really full disk); a follower of a quiet run sleeps (a handful of
wake-ups a second, not a hundred), still notices a dead supervisor, and the forced fallback poll
(TRAINRIG_FOLLOW_POLL=1) streams the same frames, also end to end through `trainrig logs -f`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.events import LogChunk, MetricPoint, StatusChanged
from runner.follow import _Frames
from runner.remote import watch
from runner.remote.procs import command_lines
from runner.remote.status import Status, reserve_status, write_status
from tests.conftest import ROOT, make_code

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")

# Another process changes the run folder: `mark` prints its clock just before the next step.
WRITER = """import os, sys, time
from runner.remote.status import Status, write_status
for op in sys.argv[1:]:
    verb, _, arg = op.partition(":")
    if verb == "sleep":
        time.sleep(float(arg))
    elif verb == "mark":
        print(time.time(), flush=True)
    elif verb == "mkdir":
        os.mkdir(arg)
    elif verb == "append":
        with open(arg, "ab") as f:
            f.write(b"a line\\n")
    elif verb == "status":
        print(write_status(arg, Status(run_id="w-none", phase="training")), flush=True)
"""


def _writer(*ops: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, *ops], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def _woke_after_mark(waiter, p: subprocess.Popen) -> float:  # type: ignore[no-untyped-def]
    """Seconds from the writer's mark to the waiter's wake-up (negative: it woke before the write)."""
    waiter.wait(10.0)
    woke = time.time()
    marked = float(p.stdout.readline())
    return woke - marked


@linux_only
@pytest.mark.parametrize("late_logs", [False, True], ids=["logs-there", "logs-made-later"])
def test_inotify_wakes_within_milliseconds_of_an_append(tmp_path: Path, late_logs: bool) -> None:
    logs = tmp_path / "logs"
    if not late_logs:
        logs.mkdir()
    waiter = watch.open_waiter([str(tmp_path), str(logs)], poll_s=0.01)
    try:
        assert waiter.kind == "inotify"
        ops = (["sleep:0.3", f"mkdir:{logs}"] if late_logs else []) + ["sleep:0.3", "mark", f"append:{logs / 'train.log'}"]
        p = _writer(*ops)
        if late_logs:
            waiter.wait(10.0)  # woken by logs/ appearing in the watched run folder, which it now watches too
        late = _woke_after_mark(waiter, p)
        assert p.wait(10) == 0
        # Not before the write (a poll would have woken 10 ms in), nor at the 10 s bound.
        assert 0 <= late < 0.1, late
    finally:
        waiter.close()


@linux_only
def test_a_status_renamed_into_place_wakes_the_waiter(tmp_path: Path) -> None:
    waiter = watch.open_waiter([str(tmp_path), str(tmp_path / "logs")], poll_s=0.01)
    try:
        p = _writer("sleep:0.3", "mark", f"status:{tmp_path / 'status.json'}")
        late = _woke_after_mark(waiter, p)
        assert p.stdout.readline() == "file\n" and p.wait(10) == 0
        assert 0 <= late < 0.1, late
    finally:
        waiter.close()


@linux_only
def test_a_status_saved_into_its_reserved_slot_on_a_full_disk_wakes_the_waiter(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({r.stderr.strip() or 'not permitted'}): this test needs root")
    try:
        status = str(disk / "status.json")
        assert reserve_status(status)
        write_status(status, Status(run_id="w-none"))
        with open(disk / "filler", "ab", buffering=0) as f:  # to its last byte
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        waiter = watch.open_waiter([str(disk), str(disk / "logs")], poll_s=0.01)
        try:
            p = _writer("sleep:0.3", "mark", f"status:{status}")
            late = _woke_after_mark(waiter, p)
            assert p.stdout.readline() == "reserve\n" and p.wait(10) == 0  # written in place, no rename
            assert 0 <= late < 0.1, late
        finally:
            waiter.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_the_forced_fallback_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(watch.FORCE_POLL_ENV, "1")
    waiter = watch.open_waiter([str(tmp_path)], poll_s=0.01)
    assert waiter.kind == "poll"
    t0 = time.monotonic()
    waiter.wait(10.0)  # nothing changes: a poll looks again after poll_s all the same
    assert time.monotonic() - t0 < 1.0


def _switches(pid: int) -> int:
    """Times the process gave up the CPU (each sleep or wait that blocked is one)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches:"))


def _follower(run_dir: Path, poll: bool) -> subprocess.Popen:
    env = {**os.environ, watch.FORCE_POLL_ENV: "1" if poll else "0"}
    return subprocess.Popen([sys.executable, "-c", "import sys; from runner.remote.main import main; main(sys.argv[1:])",
                             "follow", str(run_dir), "0", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE)


def _read_until(p: subprocess.Popen, frames: _Frames, seen: list, done) -> None:  # type: ignore[no-untyped-def]
    while not done(seen):
        data = os.read(p.stdout.fileno(), 1 << 16)
        assert data, f"the follower ended early (exit {p.wait()}), after {seen}"
        seen.extend(frames.feed(data))


@linux_only
@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "forced-poll"])
def test_a_follower_of_a_quiet_run_sleeps_and_streams_every_frame(tmp_path: Path, poll: bool) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "logs" / "train.log").write_bytes(b"first\n")
    status = Status(run_id="quiet-none", phase="training", supervisor_pid=os.getpid())  # this process stands in
    write_status(str(run_dir / "status.json"), status)
    p = _follower(run_dir, poll)
    try:
        frames, seen = _Frames(), []
        _read_until(p, frames, seen, lambda s: any(isinstance(e, LogChunk) for e in s))
        before = _switches(p.pid)
        time.sleep(1.0)  # quiet: nothing changes
        quiet = _switches(p.pid) - before
        # inotify: one liveness look a second; the poll: a hundred looks a second.
        assert (quiet >= 30) if poll else (quiet <= 10), quiet
        with open(run_dir / "logs" / "metrics.jsonl", "ab") as f:
            f.write(b'{"step": 7, "wall_time": 1.0, "values": {"loss": 0.5}}\n')
        with open(run_dir / "logs" / "train.log", "ab") as f:
            f.write(b"second\n")
        status.enter("finished")
        status.outcome = "succeeded"
        write_status(str(run_dir / "status.json"), status)
        seen.extend(frames.feed(p.stdout.read()))  # to its end: the run is over
        assert p.wait(10) == 0
        assert b"".join(e.data for e in seen if isinstance(e, LogChunk)) == b"first\nsecond\n"
        assert [e.step for e in seen if isinstance(e, MetricPoint)] == [7]
        assert [e.status.phase for e in seen if isinstance(e, StatusChanged)] == ["training", "finished"]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@linux_only
def test_a_sleeping_follower_still_notices_its_supervisor_died(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    supervisor = subprocess.Popen(["sleep", "60"])  # a stand-in that dies with no word, changing no file
    p = None
    try:
        write_status(str(run_dir / "status.json"), Status(run_id="dies-none", phase="training", supervisor_pid=supervisor.pid))
        p = _follower(run_dir, poll=False)
        frames, seen = _Frames(), []
        _read_until(p, frames, seen, lambda s: len(s) == 1)
        supervisor.kill()
        supervisor.wait()
        t0 = time.monotonic()
        _read_until(p, frames, seen, lambda s: len(s) == 2)
        assert p.wait(10) == 0
        assert time.monotonic() - t0 < 3.0  # the bounded sleep (1 s), not forever
        assert seen[-1].status.outcome == "lost" and seen[-1].status.phase == "finished"
    finally:
        for q in (supervisor, p):
            if q is not None and q.poll() is None:
                q.send_signal(signal.SIGKILL)
                q.wait()


QUIET_THEN_LINE = """
import time
print("ready", flush=True)
time.sleep(2.5)
print("done", flush=True)
"""


def _machine_side_follower(run_dir: str) -> list[int]:
    return [pid for pid, words in command_lines()
            if any(w.endswith(b"launch.py") for w in words) and b"follow" in words and run_dir.encode() in words]


@linux_only
@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "forced-poll"])
def test_logs_follow_of_a_quiet_training_sleeps_on_the_machine_and_shows_every_line(
        trainrig, popen_trainrig, env, state_home, tmp_path, poll) -> None:  # type: ignore[no-untyped-def]
    name = "quietpoll" if poll else "quietwatch"
    # The local machine's commands inherit the environment of the server that `up` starts.
    env[watch.FORCE_POLL_ENV] = "1" if poll else "0"
    code = make_code(tmp_path / name, QUIET_THEN_LINE)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    rid = f"{name}-none"
    run_dir = str(state_home / "runs" / rid / "sandbox" / "runs" / rid)
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        p = popen_trainrig("logs", rid, "-f")
        assert p.stdout.readline() == "ready\n", p.stderr.read() if p.poll() is not None else ""
        [follower] = _machine_side_follower(run_dir)
        before = _switches(follower)
        time.sleep(1.0)
        quiet = _switches(follower) - before
        assert (quiet >= 30) if poll else (quiet <= 10), quiet
        assert p.stdout.readline() == "done\n"
        p.communicate(timeout=60)
        assert p.returncode == 0
    finally:
        done = trainrig("down", rid, "--stop", "--discard-outputs")
        assert done.code == 0, done.err
