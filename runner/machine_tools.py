"""trainrig's tools on a run's machine, called through one typed client: each method runs one tools
command (runner/remote/main.py) and returns a typed record, never raw JSON or positional strings.
The streaming commands (receive, send, launch, follow, resync, tensorboard) keep their own
processes (runner/transfer.py, runner/follow.py, ...)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncssh

from runner import tools
from runner.errors import RemoteFailed
from runner.machine import Machine
from runner.remote.status import Status
from runner.remote.telemetry import Sample


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to the listed folder, "/"-separated
    size: int


class MachineTools:
    def __init__(self, conn: asyncssh.SSHClientConnection, machine: Machine):
        self.conn, self.machine = conn, machine

    async def _call(self, *args: str) -> dict:
        out = await tools.call(self.conn, self.machine, list(args))
        try:
            reply = json.loads(out)
        except ValueError as e:
            raise RemoteFailed(f"trainrig's '{args[0]}' on the machine answered something that is not JSON: {out[:200]!r}") from e
        if not isinstance(reply, dict):
            raise RemoteFailed(f"trainrig's '{args[0]}' on the machine answered {reply!r}")
        return reply

    async def status(self, run_id: str) -> Status | None:
        """The run's status (a dead supervisor settled as `lost`); None before its first start."""
        raw = await self._call("status", self.machine.run_dir(run_id))
        return Status.from_dict(raw) if raw else None

    async def telemetry(self, run_id: str) -> Sample | None:
        """The last telemetry sample the supervisor wrote; None when there is none yet."""
        raw = await self._call("telemetry", self.machine.run_dir(run_id))
        return Sample.from_dict(raw) if raw else None

    async def stop(self, run_id: str, wait_s: float) -> bool:
        """Stop the training and what it started, waiting up to `wait_s`; True if anything ran."""
        return bool((await self._call("stop", self.machine.run_dir(run_id), str(wait_s))).get("stopped"))

    async def remove(self, run_id: str, wait_s: float) -> None:
        """Stop everything of the run, then delete its folder on the machine (and nothing else)."""
        await tools.call(self.conn, self.machine, ["remove", self.machine.run_dir(run_id), str(wait_s)])

    async def files(self, folder: str) -> list[StoredFile]:
        """Every file under `folder` on the machine, with its size."""
        return [StoredFile(path, size) for path, size in (await self._call("list", folder))["files"]]

    async def tool_python(self, packages: list[str]) -> str:
        """The python of the machine's tool venv holding `packages` (made once, then reused)."""
        reply = await self._call("toolenv", self.machine.venv_cache, *packages)
        if "error" in reply:
            tail = "; ".join(reply.get("tail", [])[-3:])
            raise RemoteFailed(f"could not install {', '.join(packages)} on the machine: {reply['error']} ({tail})")
        return str(reply["python"])
