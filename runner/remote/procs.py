"""Is a process alive? (A zombie is not: nobody may have reaped it yet, but it runs no more.)"""

import os


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


def runs_for(pid, run_id):
    """The process was started for this run (pids are reused: never kill a stranger)."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return ("TRAINRIG_RUN_ID=%s" % run_id).encode() in f.read().split(b"\0")
    except OSError:
        return False
