"""Folder transfers between this computer and a machine, over one SSH channel each.

Uploads send only what changed since the last upload (by size and modification time, like rsync's
quick check) as one stream of zlib-compressed frames (incompressible files go raw); downloads use the
same protocol the other way. See runner/remote/wire.py for the protocol itself. Symbolic links never
lead out of the folder sent (runner/remote/listing.py): what is left out is in the result, to be said.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import asyncssh

from runner import tools
from runner.errors import RemoteFailed
from runner.events import EventSink, Progress
from runner.machine import Machine
from runner.remote import wire

BATCH = 1 << 20


@dataclass(frozen=True)
class TransferResult:
    files_total: int
    files_sent: int
    bytes_sent: int  # file bytes, before compression (a resumed file counts only what was sent now)
    deleted: int
    tree_hash: str
    bytes_total: int = 0  # the size of all the files of the folder
    left_out: tuple[tuple[str, str], ...] = ()  # (path, why): links out of the folder, broken links, FIFOs...

    def left_out_text(self, most: int = 5) -> str:
        """'2 left out: a (why), b (why)' naming the first `most`, or '' when nothing was."""
        if not self.left_out:
            return ""
        named = ", ".join(f"{wire.shown(p)} ({why})" for p, why in self.left_out[:most])
        more = f" and {len(self.left_out) - most} more" if len(self.left_out) > most else ""
        return f"{len(self.left_out)} left out: {named}{more}"


def _batches(frames: Iterator[bytes]) -> Callable[[], bytes | None]:
    """A function that returns the next ~1 MiB of frames, or None at the end (runs in a thread)."""

    def next_batch() -> bytes | None:
        parts, size = [], 0
        for frame in frames:
            parts.append(frame)
            size += len(frame)
            if size >= BATCH:
                break
        return b"".join(parts) if parts else None

    return next_batch


async def _fail(proc: asyncssh.SSHClientProcess, what: str) -> RemoteFailed:
    """The error to raise for a tools process that ended early (or ToolsMissing, raised)."""
    await tools.check_missing(proc)
    try:
        err = await asyncio.wait_for(proc.stderr.read(), 5)
    except asyncio.TimeoutError:
        err = b""
    lines = err.decode(errors="replace").strip().splitlines()
    return RemoteFailed(f"{what} failed on the machine: {lines[-1] if lines else 'the connection closed'}")


async def upload(
    conn: asyncssh.SSHClientConnection,
    machine: Machine,
    local_root: str,
    remote_dest: str,
    remote_index: str,
    skip: Callable[[str, bool], bool] | None,
    label: str,
    on_event: EventSink,
    mirror: bool = True,
) -> TransferResult:
    left_out: list[tuple[str, str]] = []
    entries = await asyncio.to_thread(wire.scan, local_root, skip, wire.INSIDE, left_out)
    return await tools.with_tools(conn, machine, lambda: _upload(
        conn, machine, local_root, entries, tuple(left_out), remote_dest, remote_index, label, on_event, mirror))


async def _upload(
    conn: asyncssh.SSHClientConnection, machine: Machine, local_root: str, entries: list[wire.Entry],
    left_out: tuple[tuple[str, str], ...], remote_dest: str, remote_index: str, label: str, on_event: EventSink, mirror: bool,
) -> TransferResult:
    proc = await tools.open_process(conn, machine, ["receive", remote_dest, remote_index, "mirror" if mirror else "keep"])
    proc.stdin.write(wire.encode_offer(entries))
    line = await proc.stdout.readline()
    if not line:
        raise await _fail(proc, f"uploading the {label}")
    plan = json.loads(line)
    need = plan["need"]
    resume = wire.decode_resume(plan.get("resume"))
    total = sum(entries[i].size - resume.get(i, (0, ""))[0] for i in need)
    sent = 0
    next_batch = _batches(wire.frames(local_root, entries, need, resume))
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, next_batch)
    # Read and compress the next batch in a thread while this one goes out: both cores work.
    while True:
        batch = await pending
        if batch is None:
            break
        pending = loop.run_in_executor(None, next_batch)
        proc.stdin.write(batch)
        await proc.stdin.drain()
        sent += len(batch)
        if total > BATCH:
            on_event(Progress(label, min(sent, total), total, len(need)))
    line = await proc.stdout.readline()
    if not line:
        raise await _fail(proc, f"uploading the {label}")
    done = json.loads(line)
    proc.stdin.write_eof()
    await proc.wait()
    if total > BATCH:
        on_event(Progress(label, total, total, len(need)))
    return TransferResult(len(entries), done["files"], done["bytes"], plan["deleted"], done["tree_hash"],
                          sum(e.size for e in entries), left_out)


async def download(
    conn: asyncssh.SSHClientConnection,
    machine: Machine,
    remote_src: str,
    local_dest: Path,
    label: str,
    on_event: EventSink,
) -> TransferResult:
    """Fetch a folder of the machine into `local_dest`, skipping files already there unchanged."""
    return await tools.with_tools(conn, machine, lambda: _download(conn, machine, remote_src, local_dest, label, on_event))


async def _download(
    conn: asyncssh.SSHClientConnection, machine: Machine, remote_src: str, local_dest: Path, label: str, on_event: EventSink
) -> TransferResult:
    proc = await tools.open_process(conn, machine, ["send", remote_src])
    line = await proc.stdout.readline()
    if not line:
        raise await _fail(proc, f"downloading the {label}")
    left_out: list[tuple[str, str]] = []
    entries = wire.decode_offer(line, left_out)
    local_dest.mkdir(parents=True, exist_ok=True)
    # The index lives beside the folder until the download is complete: a download cut off (even by
    # kill -9) and run again into the same folder keeps what came whole and continues the file that
    # was arriving. Mirror: a file gone from the machine since then goes from here too.
    index = wire.FileIndex(str(local_dest) + ".index.json")
    need, _ = await asyncio.to_thread(wire.plan, str(local_dest), entries, index, True)
    resume = await asyncio.to_thread(wire.partials, str(local_dest), entries, need)
    proc.stdin.write((json.dumps({"need": need, "resume": wire.encode_resume(resume)}) + "\n").encode())
    total = sum(entries[i].size - resume.get(i, (0, None))[0] for i in need)
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if total > BATCH and (done[0] == total or done[0] % BATCH < n):
            on_event(Progress(label, done[0], total, len(need)))

    dec = wire.Decoder(str(local_dest), entries, index, on_bytes=progress, resume=resume)
    try:
        while not dec.done:
            data = await proc.stdout.read(1 << 20)
            if not data:
                raise await _fail(proc, f"downloading the {label}")
            dec.feed(data)
    finally:
        try:
            index.save()  # an error or Ctrl-C: what came whole is known to the next attempt
        except OSError:
            pass  # this computer's disk is full: the next attempt hashes what came whole instead
    proc.stdin.write_eof()
    await proc.wait()
    await asyncio.to_thread(wire.remove_partials, str(local_dest))  # of files no longer offered
    Path(index.path).unlink(missing_ok=True)
    return TransferResult(len(entries), dec.files, dec.bytes, 0, index.tree_hash([e.path for e in entries]),
                          sum(e.size for e in entries), tuple(left_out))
