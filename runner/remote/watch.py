"""Waiting for a run's files to change: inotify on Linux (through ctypes, as `tail -F` does), a
fixed poll where that is not available. Standard library only, Python 3.8+ (it runs on the machine).

The waiter only says "look again": callers re-read whatever they follow after every wake, so a
lost, merged or overflowing event never loses data, only a wake-up. Watches are added before the
caller's first look, so a change made after a look always wakes the next wait.
"""

import errno
import os
import select
import struct
import time

# IN_MODIFY (an append), IN_CLOSE_WRITE, IN_MOVED_TO (status.json renamed into place), IN_CREATE
# (a file or the logs/ folder appearing); *_SELF: the watched folder itself moved or removed.
IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED = 0x400, 0x800, 0x8000
MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
FORCE_POLL_ENV = "TRAINRIG_FOLLOW_POLL"  # "1": the fallback poll even where inotify works
# Under a flood of writes (a third wake-up in a row this soon after the last), one wake-up per
# this many seconds, with more data per look; a write after a quiet spell still wakes at once.
COALESCE_S = 0.005


class PollWaiter:
    """The fallback: look again every `poll_s`, whatever the timeout."""

    kind = "poll"

    def __init__(self, poll_s):
        self.poll_s = poll_s

    def wait(self, timeout_s):
        time.sleep(min(self.poll_s, timeout_s))

    def close(self):
        pass


class InotifyWaiter:
    """Wakes when a file in one of `folders` is written, created or renamed in, when `hangup_fd`
    (the follower's stdout) loses its reader, or after the timeout. A folder that does not exist yet
    (or was replaced) is watched as soon as it does; until then, unless its parent is watched, waits
    are capped at `poll_s`."""

    kind = "inotify"

    def __init__(self, folders, poll_s, hangup_fd=None):
        import ctypes  # ImportError: a Python built without it

        libc = ctypes.CDLL(None, use_errno=True)
        self._init1, self._add = libc.inotify_init1, libc.inotify_add_watch  # AttributeError: not Linux
        self._add.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        self._rm = libc.inotify_rm_watch
        self.fd = self._init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, "inotify_init1: " + os.strerror(e))  # e.g. EMFILE: max_user_instances
        self.poll_s = poll_s
        self._watches = {os.fsencode(os.path.abspath(f)): None for f in folders}  # folder -> wd
        self._poll = select.poll()
        self._poll.register(self.fd, select.POLLIN)
        if hangup_fd is not None:
            try:
                self._poll.register(hangup_fd, 0)  # errors and hang-ups are always reported
            except (OSError, ValueError, TypeError):
                pass
        self._last_wake = 0.0
        self._quick = 0  # wake-ups in a row, each within COALESCE_S of the last
        self._ensure()

    def _ensure(self):
        """Watch every folder not watched yet; True when each is, or will be woken for when it is
        made (its parent folder is watched: logs/ in the run folder)."""
        for folder, wd in self._watches.items():
            if wd is None:
                wd = self._add(self.fd, folder, MASK)
                self._watches[folder] = wd if wd >= 0 else None  # ENOENT (not made yet), ENOSPC (max_user_watches)
        return all(wd is not None or self._watches.get(os.path.dirname(f)) is not None
                   for f, wd in self._watches.items())

    def _drain(self):
        lost = set()
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            if not data:
                break
            pos = 0
            while pos + EVENT.size <= len(data):
                wd, mask, _, n = EVENT.unpack_from(data, pos)
                if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                    lost.add(wd)
                pos += EVENT.size + n
        for folder, wd in self._watches.items():
            if wd is not None and wd in lost:
                self._rm(self.fd, wd)  # a moved folder keeps its watch: drop it, watch the path again
                self._watches[folder] = None

    def wait(self, timeout_s):
        if not self._ensure():
            timeout_s = min(timeout_s, self.poll_s)
        try:
            ready = self._poll.poll(max(0, int(timeout_s * 1000)))
        except InterruptedError:
            ready = []
        if any(fd == self.fd for fd, _ in ready):
            since = time.monotonic() - self._last_wake
            self._quick = self._quick + 1 if since < COALESCE_S else 0
            if self._quick >= 2:
                time.sleep(COALESCE_S - since)
            self._drain()
            self._ensure()  # before the caller looks: a folder made meanwhile is watched from now on
        self._last_wake = time.monotonic()

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_waiter(folders, poll_s, hangup_fd=None):
    """inotify where it works, else (not Linux, no ctypes, no inotify instance left, or
    TRAINRIG_FOLLOW_POLL=1) a poll every `poll_s`."""
    if os.environ.get(FORCE_POLL_ENV) == "1" or not hasattr(select, "poll"):
        return PollWaiter(poll_s)
    try:
        return InotifyWaiter(folders, poll_s, hangup_fd)
    except (OSError, AttributeError, ImportError):
        return PollWaiter(poll_s)
