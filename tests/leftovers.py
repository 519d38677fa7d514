"""The processes a test session leaves running: local SSH servers, supervisors and tools, trainings.

Every process this session starts carries SESSION_MARK in its environment (set below, inherited by
each `trainrig`, its local server, the supervisor and the training), so the processes of other test
sessions on the same computer are never counted, let alone killed.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass

SESSION_MARK = "TRAINRIG_TEST_SESSION"
SESSION_ID = uuid.uuid4().hex
# Before any test starts a process: they all inherit it from here.
os.environ[SESSION_MARK] = SESSION_ID
GRACE_S = 5.0  # for processes already on their way out (a server told to stop, a follower whose client left)


@dataclass(frozen=True)
class Proc:
    pid: int
    started: int  # clock ticks since boot: a pid reused later is another process
    what: str

    def __str__(self) -> str:
        return f"pid {self.pid}: {self.what}"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _kind(args: list[bytes], environ: list[bytes]) -> str | None:
    """What trainrig process this is, or None for any other."""
    if b"runner.targets.local_server" in args:
        return "local SSH server"
    if any(a.endswith(b"/launch.py") for a in args) or any(b"trainrig_remote" in a for a in args):
        return "trainrig tools (supervisor, follower, ...)"
    if any(e.startswith(b"TRAINRIG_RUN_ID=") for e in environ):
        return "started by a training"
    return None


def running() -> set[Proc]:
    """This session's trainrig processes that still run (zombies do not)."""
    mark = f"{SESSION_MARK}={SESSION_ID}".encode()
    found = set()
    for name in filter(str.isdigit, os.listdir("/proc")):
        environ = _read(f"/proc/{name}/environ").split(b"\0")
        if mark not in environ:
            continue
        args = _read(f"/proc/{name}/cmdline").split(b"\0")
        kind = _kind(args, environ)
        stat = _read(f"/proc/{name}/stat").decode(errors="replace").rsplit(")", 1)[-1].split()
        if kind is None or len(stat) < 20 or stat[0] == "Z":
            continue
        cmd = b" ".join(a for a in args if a).decode(errors="replace")
        found.add(Proc(int(name), int(stat[19]), f"{kind}: {cmd[:200]}"))
    return found


def left_by_test(before: set[Proc]) -> set[Proc]:
    """The processes started since `before` that still run after a bounded grace."""
    end = time.monotonic() + GRACE_S
    while True:
        left = running() - before
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


def kill(procs: set[Proc]) -> None:
    """SIGKILL these (each only if it still is the same process), so the next test starts clean."""
    for p in procs:
        if p in running():
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
