"""Starting a detached supervisor, restoring a restarted run's logs, and re-running a final sync."""

import os

from .config import RunLayout, SupervisorConfig
from .location import Location, parse_location
from .procs import alive
from .status import read_status, reserve_status
from .stores import open_store
from .supervisor_loop import Supervisor
from .sync import pull


def launch(run_dir, config_text):
    """Start a detached supervisor for `run_dir`; returns its pid once its first status is written."""
    L = RunLayout(run_dir)
    config = SupervisorConfig.from_json(config_text)
    # Relative paths are relative to the login folder; the training runs elsewhere.
    config.venv_cache = os.path.abspath(config.venv_cache)
    config_text = config.to_json()
    L.make()
    # First, while there may still be room: the status stays writable once the disk is full.
    reserve_status(L.status)
    tmp = L.config + ".tmp"
    with open(tmp, "w") as f:
        f.write(config_text)
    os.replace(tmp, L.config)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: new session, fork again so that the supervisor is nobody's child
        os.close(r)
        os.setsid()
        if os.fork():
            os._exit(0)
        os.setpgid(0, 0)  # its own group: `kill -- -pid` reaches it (and only it and pip)
        try:
            devnull = os.open(os.devnull, os.O_RDONLY)
            out = os.open(L.supervisor_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(devnull, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            sup = Supervisor(L, config)
            sup.save()
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            sup.run()
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    got = b""
    while True:
        chunk = os.read(r, 64)
        if not chunk:
            break
        got += chunk
    os.close(r)
    if not got:
        raise RuntimeError("the supervisor did not start; see %s" % L.supervisor_log)
    return int(got)


def restore_logs(run_dir, config_text):
    """A restarted run's logs from its store, before the launch reply gives their sizes: the new
    attempt appends to them, and a follower goes on from where it was (no line lost or repeated)."""
    config = SupervisorConfig.from_json(config_text)
    if not config.restore_from_store:
        return
    L = RunLayout(run_dir)
    L.make()
    output = parse_location(config.output_uri) if config.output_uri else Location("file", "", L.store)
    pull(open_store(output.child("logs")), L.logs, os.path.join(L.dir, ".sync-logs.json"))
    try:
        with open(L.train_log, "rb+") as f:
            size = f.seek(0, 2)
            if size and f.seek(size - 1) >= 0 and f.read(1) != b"\n":
                f.write(b"\n")  # a line the lost machine cut off stays apart from the next one
    except FileNotFoundError:
        pass


def resync(run_dir):
    """Run the final sync again for a run whose supervisor is gone and whose final sync did not
    finish (a disk that was full, a bucket that failed): `trainrig download` asks for it. Returns
    the status after it; a run still going is left alone."""
    L = RunLayout(run_dir)
    status = read_status(L.status)
    if not status.done:
        if status.supervisor_pid and alive(status.supervisor_pid):
            return status
        status.settle_dead_supervisor()
    if status.final_sync_ok is not False:
        return status
    with open(L.config) as f:
        config = SupervisorConfig.from_json(f.read())
    sup = Supervisor(L, config)
    sup.status = status
    sup.note("resync: the final sync again (it had not finished: %s)" % status.sync_error)
    sup._final_sync()
    sup._publish_final()
    sup.note("resync: %s" % ("done" if status.final_sync_ok else "NOT finished: %s" % status.sync_error))
    return status
