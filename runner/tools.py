"""trainrig's own tools on the machine: runner/remote/, copied once per version into
`<root>/tools/<hash>/` and run with the machine's Python."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

import asyncssh

from runner import ssh
from runner.errors import RemoteFailed
from runner.machine import Machine

REMOTE_SRC = Path(__file__).resolve().parent / "remote"
T = TypeVar("T")
PACKAGE = "trainrig_remote"
MISSING = 86  # exit code of the guard below: the tools are not on the machine yet

# Writes the tools from a JSON object on stdin into a temporary folder, then renames it into
# place, so a half-copied tools folder is never used. Runs before any trainrig code is there.
_BOOTSTRAP = """
import json, os, shutil, sys
dest = sys.argv[1]
if os.path.isdir(dest):
    sys.exit(0)
files = json.load(sys.stdin)
tmp = "%s.tmp-%d" % (dest, os.getpid())
for name, text in files.items():
    path = os.path.join(tmp, *name.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
try:
    os.rename(tmp, dest)
except OSError:
    shutil.rmtree(tmp, ignore_errors=True)
"""


@lru_cache(maxsize=1)
def bundle() -> tuple[str, dict[str, str]]:
    """(version hash, {path in tools folder: text})."""
    files = {}
    for path in sorted(REMOTE_SRC.rglob("*.py")):
        rel = path.relative_to(REMOTE_SRC).as_posix()
        files["launch.py" if rel == "launch.py" else f"{PACKAGE}/{rel}"] = path.read_text()
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    return digest, files


def tools_dir(machine: Machine) -> str:
    return f"{machine.root}/tools/{bundle()[0]}"


async def install(conn: asyncssh.SSHClientConnection, machine: Machine) -> None:
    _, files = bundle()
    done = await ssh.run(conn, [machine.python, "-c", _BOOTSTRAP, tools_dir(machine)], json.dumps(files).encode())
    if done.exit_status != 0:
        raise RemoteFailed(
            f"could not install trainrig's tools on the machine with {machine.python}: "
            f"{(done.stderr or b'').decode(errors='replace').strip()[-300:]}"
        )


def command(machine: Machine, args: list[str], python: str | None = None) -> str:
    """Shell text that runs a tools command (with `python`, default the machine's), or exits
    MISSING when the tools are not there yet."""
    launch = f"{tools_dir(machine)}/launch.py"
    return f"test -f {shlex.quote(launch)} || exit {MISSING}; exec {shlex.join([python or machine.python, launch, *args])}"


async def call(conn: asyncssh.SSHClientConnection, machine: Machine, args: list[str], stdin: bytes | None = None) -> bytes:
    """Run a tools command to completion; returns its stdout, raises RemoteFailed on failure."""
    for attempt in (1, 2):
        try:
            done = await conn.run(command(machine, args), input=stdin, encoding=None, check=False)
        except asyncssh.Error as e:
            raise RemoteFailed(f"the connection to the machine broke during '{args[0]}': {e.reason}") from e
        if done.exit_status == MISSING and attempt == 1:
            await install(conn, machine)
            continue
        break
    if done.exit_status != 0:
        err = (done.stderr or b"").decode(errors="replace").strip().splitlines()
        raise RemoteFailed(f"trainrig's '{args[0]}' failed on the machine: {err[-1] if err else f'exit {done.exit_status}'}")
    return done.stdout or b""


class ToolsMissing(Exception):
    """The tools folder of this version is not on the machine (trainrig was upgraded since `up`)."""


async def open_process(
    conn: asyncssh.SSHClientConnection, machine: Machine, args: list[str], python: str | None = None
) -> asyncssh.SSHClientProcess:
    """Start a streaming tools command (transfers, follow), binary in both directions.

    Optimistic: no round trip to check for the tools first. A caller whose process ends without
    output calls `check_missing`, and `with_tools` installs them and tries again.
    """
    return await conn.create_process(command(machine, args, python), encoding=None)


async def check_missing(proc: asyncssh.SSHClientProcess) -> None:
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except asyncio.TimeoutError:
        return
    if proc.exit_status == MISSING:
        raise ToolsMissing()


async def with_tools(conn: asyncssh.SSHClientConnection, machine: Machine, work: Callable[[], Awaitable[T]]) -> T:
    try:
        return await work()
    except ToolsMissing:
        pass
    except (BrokenPipeError, ConnectionResetError, RemoteFailed):
        # The guard's exit can close the channel before `work` writes its first bytes (an upload
        # writes first): that raises here instead of ToolsMissing. Ask once whether that was the
        # cause; if not, the failure stands as it was.
        if await _tools_present(conn, machine):
            raise
    await install(conn, machine)
    return await work()


async def _tools_present(conn: asyncssh.SSHClientConnection, machine: Machine) -> bool:
    try:
        done = await conn.run(f"test -f {shlex.quote(tools_dir(machine) + '/launch.py')}", check=False)
    except (asyncssh.Error, OSError):
        return True  # the connection itself is gone: nothing to install, the original failure stands
    return done.exit_status == 0
