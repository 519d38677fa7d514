"""Is a process alive? (A zombie is not: nobody may have reaped it yet, but it runs no more.)
And which processes were started for a run, wherever they went (another process group, session)."""

import os
import signal
import time

# Put by the supervisor into the environment of everything it starts: the run's folder, unique to
# this run on this machine (a run id is not: two trainrig homes may hold runs of the same name).
RUN_DIR_MARK = "TRAINRIG_RUN_DIR"


def alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def command_lines():
    """(pid, argv as bytes words) of every live process this user may read. Empty where there is
    no /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if alive(int(name)):
            yield int(name), argv


def runs_for(pid, run_id):
    """The process was started for this run (pids are reused: never kill a stranger)."""
    return ("TRAINRIG_RUN_ID=%s" % run_id).encode() in _environ(pid)


def marked(run_dir):
    """Pids of the live processes carrying the run's mark: whatever the training started, also
    those that left its process group (double fork + setsid). Empty where there is no /proc."""
    want = ("%s=%s" % (RUN_DIR_MARK, os.path.abspath(run_dir))).encode()
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    me = os.getpid()
    return [int(n) for n in names
            if n.isdigit() and int(n) != me and want in _environ(int(n)) and alive(int(n))]


def end_marked(run_dir, rounds=50):
    """SIGKILL every process carrying the run's mark, looking again until none is left (one may
    have forked while we looked). True if there was any."""
    any_found = False
    for _ in range(rounds):
        pids = marked(run_dir)
        if not pids:
            break
        any_found = True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
    return any_found
