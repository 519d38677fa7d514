"""Follow a run from the machine: log bytes from an offset, plus every status change, as frames.

Frames: b"L" + offset(u64) + length(u32) + bytes, and b"S" + length(u32) + status JSON. While the
training runs only whole lines are sent, so a follower restarted at the last offset it printed
shows every line once. Ends when the run has an outcome and the log is drained; a supervisor that
died without one is reported as outcome "lost", never waited for forever.
"""

import json
import os
import struct
import sys
import time

from .config import RunLayout
from .procs import alive
from .status import read_status

LOG = struct.Struct("!cQI")
STATUS = struct.Struct("!cI")
POLL_S = 0.05
MAX_READ = 1 << 20
# A line longer than this is sent in pieces rather than held back forever.
MAX_HELD = 1 << 16


def _send_status(out, status):
    payload = json.dumps(status.to_dict()).encode()
    out.write(STATUS.pack(b"S", len(payload)) + payload)
    out.flush()


def follow(run_dir, offset, out, poll_s=POLL_S):
    L = RunLayout(run_dir)
    status_seen = None
    status = None
    last_alive_check = 0.0
    log = None
    while True:
        try:
            st = os.stat(L.status)
            # Every write is a new file renamed into place: a new inode even within one clock tick.
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        if seen is not None and seen != status_seen:
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
        if log is None and os.path.exists(L.train_log):
            log = open(L.train_log, "rb")
        sent = False
        while log is not None:
            log.seek(offset)
            data = log.read(MAX_READ)
            if not data:
                break
            if not finished:
                cut = data.rfind(b"\n") + 1
                if cut == 0 and len(data) < MAX_HELD:
                    break
                data = data[:cut] if cut else data
            out.write(LOG.pack(b"L", offset, len(data)) + data)
            offset += len(data)
            sent = True
        if sent:
            out.flush()
        if finished:
            return status
        if not sent:
            time.sleep(poll_s)


def main(run_dir, offset):
    try:
        follow(run_dir, offset, sys.stdout.buffer)
    except BrokenPipeError:
        pass  # the user stopped following; the training goes on
