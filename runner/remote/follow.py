"""Follow a run from the machine: its log, metrics and telemetry files from offsets, plus every
status change, as frames.

Frames: b"S" + length(u32) + status JSON, and for each followed file b"L" (logs/train.log),
b"M" (logs/metrics.jsonl) or b"T" (logs/telemetry.jsonl) + offset(u64) + length(u32) + bytes.
Only whole lines are sent (the log's last piece once the run is over), so a follower restarted at
the offsets it last showed shows every line once. Ends when the run is done and every file is
drained; a supervisor that died without an outcome is reported as outcome "lost", never waited for
forever.

It sleeps until a followed file or the status changes (inotify, runner/remote/watch.py), or a poll
every POLL_S where inotify is missing (not Linux) or TRAINRIG_FOLLOW_POLL=1 forces it.
"""

import json
import os
import select
import struct
import sys
import time

from .config import RunLayout
from .procs import alive
from .status import read_status, status_stamp
from .watch import open_waiter

CHUNK = struct.Struct("!cQI")
STATUS = struct.Struct("!cI")
POLL_S = 0.01  # the fallback poll: 100 looks a second cost ~0.2% of a core more than 20 (measured), a metric point ~5x sooner
# With inotify, the longest sleep: how soon a dead supervisor (no file changes then) is noticed.
IDLE_S = 1.0
MAX_READ = 1 << 20
# A log line longer than this is sent in pieces rather than held back forever.
MAX_HELD = 1 << 16
KINDS = (b"L", b"M", b"T")
SKIP = "-"  # an offset argument that means: do not follow this file


class _File:
    """One followed file: sends what was appended since `offset`, whole lines only."""

    def __init__(self, kind, path, offset, split_long_lines):
        self.kind, self.path, self.offset = kind, path, offset
        self.split_long_lines = split_long_lines  # the log may; a JSON line in pieces is no use
        self._f = None

    def pump(self, out, finished):
        """Write this file's new frames to `out`; True if any were written."""
        if self._f is None:
            if not os.path.exists(self.path):
                return False
            self._f = open(self.path, "rb")
        sent = False
        while True:
            self._f.seek(self.offset)
            data = self._f.read(MAX_READ)
            if not data:
                break
            if not (finished and self.split_long_lines):
                cut = data.rfind(b"\n") + 1
                if cut:
                    data = data[:cut]
                elif len(data) < (MAX_HELD if self.split_long_lines else MAX_READ):
                    break  # wait for the rest of the line (a monster line goes in pieces)
            out.write(CHUNK.pack(self.kind, self.offset, len(data)) + data)
            self.offset += len(data)
            sent = True
        return sent


def _send_status(out, status):
    payload = json.dumps(status.to_dict()).encode()
    out.write(STATUS.pack(b"S", len(payload)) + payload)
    out.flush()


class _ReaderWatch:
    """Tells when nobody reads `out` any more (the client was killed, its SSH channel closed):
    without it a follower of a quiet training would only find out at the training's next line."""

    def __init__(self, out):
        self._poll = None
        self.fd = None
        try:
            fd = out.fileno()
            self._poll = select.poll()
            self._poll.register(fd, 0)  # POLLERR (a pipe's reader gone) and POLLHUP are always reported
            self.fd = fd  # the inotify waiter wakes on its hang-up too
        except (AttributeError, OSError, ValueError):
            pass  # not a pipe or socket (or no poll here): a write will tell, as before

    def gone(self):
        if self._poll is None:
            return False
        return any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, ev in self._poll.poll(0))


def follow(run_dir, offsets, out, poll_s=POLL_S):
    """`offsets`: (log, metrics, telemetry) offsets, None for a file not followed. Returns the last
    status, or None when the reader went away first."""
    L = RunLayout(run_dir)
    reader = _ReaderWatch(out)
    # Watched before the first look, so that no change after a look goes unnoticed: the run folder
    # (status.json renamed in, its reserved slot written in place) and logs/ (the followed files).
    waiter = open_waiter([L.dir, L.logs], poll_s, reader.fd)
    try:
        return _loop(L, offsets, out, reader, waiter)
    finally:
        waiter.close()


def _loop(L, offsets, out, reader, waiter):
    files = [
        _File(kind, path, offset, kind == b"L")
        for kind, path, offset in zip(KINDS, (L.train_log, L.metrics, L.telemetry), offsets)
        if offset is not None
    ]
    status_seen = None
    status = None
    last_alive_check = 0.0
    while True:
        # Every write is a new file renamed into place (a new inode even within one clock tick), or,
        # on a full disk, a new sequence number in its reserved slot.
        seen = status_stamp(L.status)
        if seen != (None, 0) and seen != status_seen:
            status_seen = seen
            status = read_status(L.status)
            _send_status(out, status)
        finished = status is not None and status.done
        if status is not None and not finished and time.monotonic() - last_alive_check > 1.0:
            last_alive_check = time.monotonic()
            if status.supervisor_pid and not alive(status.supervisor_pid):
                status = read_status(L.status)  # it may have finished just now
                if not status.done:
                    status.settle_dead_supervisor()
                _send_status(out, status)
                finished = True
        sent = False
        for f in files:
            sent = f.pump(out, finished) or sent
        if sent:
            out.flush()
        if finished:
            return status
        if not sent:
            if reader.gone():
                return None
            waiter.wait(IDLE_S)


def parse_offsets(args):
    """Command-line words (log [metrics [telemetry]]) to offsets; SKIP or a missing word: not followed."""
    words = list(args) + [SKIP] * (len(KINDS) - len(args))
    return tuple(None if w == SKIP else int(w) for w in words[:len(KINDS)])


def main(run_dir, offsets):
    try:
        follow(run_dir, offsets, sys.stdout.buffer)
    except BrokenPipeError:
        pass  # the user stopped following; the training goes on
