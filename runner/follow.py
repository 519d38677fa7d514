"""Following a run: log bytes, metric points and telemetry samples, each from its own offset, and
status changes, streamed from the machine.

Every event carries where it starts and ends in its file, so a caller that remembers the end of
the last one it showed (`Offsets`) can follow again from there and see each line exactly once.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace

import asyncssh

from runner import tools
from runner.errors import RemoteFailed
from runner.events import Event, EventSink, LogChunk, MetricPoint, Notice, StatusChanged, TelemetrySample
from runner.machine import Machine
from runner.metrics import parse_lines, split_lines
from runner.remote.follow import CHUNK, SKIP, STATUS
from runner.remote.status import Status
from runner.remote.telemetry import Sample


@dataclass(frozen=True)
class Offsets:
    """Where each followed file resumes; None: that file is not followed."""

    log: int | None = 0
    metrics: int | None = None
    telemetry: int | None = None

    def args(self) -> list[str]:
        return [SKIP if o is None else str(o) for o in (self.log, self.metrics, self.telemetry)]

    def after(self, event: Event) -> Offsets:
        """These offsets once `event` has been shown."""
        if isinstance(event, LogChunk):
            return replace(self, log=event.offset + len(event.data))
        if isinstance(event, MetricPoint):
            return replace(self, metrics=event.end)
        if isinstance(event, TelemetrySample):
            return replace(self, telemetry=event.end)
        return self


def _telemetry(data: bytes, offset: int) -> list[TelemetrySample | Notice]:
    out: list[TelemetrySample | Notice] = []
    for at, line in split_lines(data, offset):
        try:
            out.append(TelemetrySample(Sample.from_dict(json.loads(line)), at, at + len(line)))
        except (ValueError, TypeError, AttributeError):
            out.append(Notice(f"skipped a telemetry line that is not a sample: {line[:80]!r}"))
    return out


def _metrics(data: bytes, offset: int) -> list[MetricPoint | Notice]:
    out: list[MetricPoint | Notice] = []
    for at, line, point in parse_lines(data, offset):
        if point is not None:
            out.append(point)
        elif line.strip():
            # A line the script wrote by hand, or a writer that died mid-line: say so, go on.
            out.append(Notice(f"skipped a line of metrics.jsonl at byte {at} that is not a metric point: {line[:80]!r}"))
    return out


class _Frames:
    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Event]:
        self.buf += data
        out: list[Event] = []
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 1:
            kind = bytes(buf[pos:pos + 1])
            if kind in (b"L", b"M", b"T"):
                if len(buf) - pos < CHUNK.size:
                    break
                _, offset, n = CHUNK.unpack_from(buf, pos)
                if len(buf) - pos < CHUNK.size + n:
                    break
                payload = bytes(buf[pos + CHUNK.size:pos + CHUNK.size + n])
                if kind == b"L":
                    out.append(LogChunk(offset, payload))
                elif kind == b"M":
                    out.extend(_metrics(payload, offset))
                else:
                    out.extend(_telemetry(payload, offset))
                pos += CHUNK.size + n
            elif kind == b"S":
                if len(buf) - pos < STATUS.size:
                    break
                _, n = STATUS.unpack_from(buf, pos)
                if len(buf) - pos < STATUS.size + n:
                    break
                out.append(StatusChanged(Status.from_dict(json.loads(buf[pos + STATUS.size:pos + STATUS.size + n]))))
                pos += STATUS.size + n
            else:
                raise RemoteFailed(f"the log stream from the machine is garbled (frame {kind!r})")
        del buf[:pos]
        return out


async def follow(
    conn: asyncssh.SSHClientConnection, machine: Machine, run_id: str, offsets: Offsets, on_event: EventSink,
    proc: asyncssh.SSHClientProcess | None = None,
) -> tuple[Status, Offsets]:
    """Stream until the run is done; returns (last status, offsets after the last event shown).

    `proc` is a tools process already streaming follow frames (`launch ... follow`), else one is
    started. A broken connection is a RemoteFailed (the caller reconnects).
    """
    try:
        if proc is not None:
            return await _stream(proc, offsets, on_event)

        async def fresh() -> tuple[Status, Offsets]:
            p = await tools.open_process(conn, machine, ["follow", machine.run_dir(run_id), *offsets.args()])
            return await _stream(p, offsets, on_event)

        return await tools.with_tools(conn, machine, fresh)
    except (asyncssh.Error, OSError) as e:
        raise RemoteFailed(f"the connection to the machine broke: {getattr(e, 'reason', None) or e}") from e


async def _stream(proc: asyncssh.SSHClientProcess, offsets: Offsets, on_event: EventSink) -> tuple[Status, Offsets]:
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
                offsets = offsets.after(event)
                if isinstance(event, StatusChanged):
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
    return status, offsets
