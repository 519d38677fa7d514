"""Following a run: log bytes from an offset and status changes, streamed from the machine.

Every LogChunk carries the offset it starts at, so a caller that remembers the end of the last chunk
it showed can follow again from there and see each line exactly once.
"""

from __future__ import annotations

import asyncio
import json

import asyncssh

from runner import tools
from runner.errors import RemoteFailed
from runner.events import EventSink, LogChunk, StatusChanged
from runner.machine import Machine
from runner.remote.follow import LOG, STATUS
from runner.remote.status import Status


class _Frames:
    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[LogChunk | StatusChanged]:
        self.buf += data
        out: list[LogChunk | StatusChanged] = []
        buf = self.buf
        pos = 0
        while True:
            if len(buf) - pos < 1:
                break
            kind = buf[pos:pos + 1]
            if kind == b"L":
                if len(buf) - pos < LOG.size:
                    break
                _, offset, n = LOG.unpack_from(buf, pos)
                if len(buf) - pos < LOG.size + n:
                    break
                out.append(LogChunk(offset, bytes(buf[pos + LOG.size:pos + LOG.size + n])))
                pos += LOG.size + n
            elif kind == b"S":
                if len(buf) - pos < STATUS.size:
                    break
                _, n = STATUS.unpack_from(buf, pos)
                if len(buf) - pos < STATUS.size + n:
                    break
                out.append(StatusChanged(Status.from_dict(json.loads(buf[pos + STATUS.size:pos + STATUS.size + n]))))
                pos += STATUS.size + n
            else:
                raise RemoteFailed(f"the log stream from the machine is garbled (frame {bytes(kind)!r})")
        del buf[:pos]
        return out


async def follow(
    conn: asyncssh.SSHClientConnection, machine: Machine, run_id: str, offset: int, on_event: EventSink,
    proc: asyncssh.SSHClientProcess | None = None,
) -> tuple[Status, int]:
    """Stream until the run has an outcome; returns (last status, offset after the last log byte).

    `proc` is a tools process already streaming follow frames (`launch ... follow`), else one is
    started. A broken connection is a RemoteFailed (the caller reconnects).
    """
    try:
        if proc is not None:
            return await _stream(proc, offset, on_event)

        async def fresh() -> tuple[Status, int]:
            p = await tools.open_process(conn, machine, ["follow", machine.run_dir(run_id), str(offset)])
            return await _stream(p, offset, on_event)

        return await tools.with_tools(conn, machine, fresh)
    except (asyncssh.Error, OSError) as e:
        raise RemoteFailed(f"the connection to the machine broke: {getattr(e, 'reason', None) or e}") from e


async def _stream(proc: asyncssh.SSHClientProcess, offset: int, on_event: EventSink) -> tuple[Status, int]:
    frames = _Frames()
    status: Status | None = None
    got_any = False
    try:
        while True:
            data = await proc.stdout.read(1 << 16)
            if not data:
                break
            got_any = True
            for event in frames.feed(data):
                if isinstance(event, LogChunk):
                    offset = event.offset + len(event.data)
                else:
                    status = event.status
                on_event(event)
        if status is None or not status.done:
            if not got_any:
                await tools.check_missing(proc)
            try:
                err = (await asyncio.wait_for(proc.stderr.read(), 2)).decode(errors="replace").strip().splitlines()
            except asyncio.TimeoutError:
                err = []
            raise RemoteFailed(f"following the run stopped early: {err[-1] if err else 'the connection closed'}")
    finally:
        proc.close()
    return status, offset
