"""Entry point of the tools on the machine: `python3 launch.py COMMAND ARGS...`.

Commands talk to the runner over stdin/stdout; every argument arrives already split, never
through a shell.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from . import wire
from .config import RunLayout, SupervisorConfig
from .procs import alive, end_marked, runs_for
from .status import read_status


ALREADY_RUNNING = "already_running"  # launch's refusal: another supervisor of the run is alive


def _read_line(stream):
    line = stream.readline()
    if not line:
        raise wire.ProtocolError("the other side closed the connection")
    return line


def _reply(obj):
    sys.stdout.buffer.write((json.dumps(obj) + "\n").encode())
    sys.stdout.buffer.flush()


def receive(dest, index_path, mirror):
    """Be the receiving side of an upload into `dest`."""
    stdin = sys.stdin.buffer
    entries = wire.decode_offer(_read_line(stdin))
    os.makedirs(dest, exist_ok=True)
    index = wire.FileIndex(index_path)
    need, deleted = wire.plan(dest, entries, index, mirror)
    resume = wire.partials(dest, entries, need)
    _reply({"need": need, "deleted": deleted, "resume": wire.encode_resume(resume)})
    dec = wire.Decoder(dest, entries, index, resume=resume)
    try:
        while not dec.done:
            data = stdin.read1(1 << 20)
            if not data:
                raise wire.ProtocolError("the upload stopped half-way")
            dec.feed(data)
    finally:
        index.save()  # what did arrive is known, so a resumed upload neither resends nor orphans it
    paths = [e.path for e in entries]
    _reply({"files": dec.files, "bytes": dec.bytes, "tree_hash": index.tree_hash(paths)})


def send(src):
    """Be the offering side of a download from `src`: links never lead out of it, and what is left
    out is named in the offer."""
    left_out = []
    entries = wire.scan(src, links=wire.INSIDE, left_out=left_out)
    out = sys.stdout.buffer
    out.write(wire.encode_offer(entries, left_out))
    out.flush()
    reply = json.loads(_read_line(sys.stdin.buffer))
    for frame in wire.frames(src, entries, reply["need"], wire.decode_resume(reply.get("resume"))):
        out.write(frame)
    out.flush()


def _running(L):
    try:
        s = read_status(L.status)
    except (OSError, ValueError):
        return None
    return s if (not s.done and s.supervisor_pid and alive(s.supervisor_pid)) else None


def launch(run_dir, then_follow):
    """Start the supervisor (config on stdin); with `then_follow`, stream the run like `follow`
    right away, which saves the user a round trip before the first log line."""
    from .supervisor import launch as start, restore_logs

    L = RunLayout(run_dir)
    running = _running(L)
    if running:
        _reply({"error": ALREADY_RUNNING, "pid": running.supervisor_pid})
        return 3
    config_text = sys.stdin.read()
    restore_logs(run_dir, config_text)  # a restarted run: its logs from the store, before their sizes are read
    # This attempt's lines start where the files end now (an earlier attempt's stay before them).
    offsets = tuple(os.path.getsize(p) if os.path.exists(p) else 0 for p in (L.train_log, L.metrics, L.telemetry))
    pid = start(run_dir, config_text)
    _reply({"pid": pid, "log_offset": offsets[0], "metrics_offset": offsets[1], "telemetry_offset": offsets[2]})
    if then_follow:
        from .follow import main as follow_main

        follow_main(run_dir, offsets)
    return 0


def status(run_dir):
    L = RunLayout(run_dir)
    try:
        s = read_status(L.status)
    except FileNotFoundError:
        _reply({})
        return 0
    if not s.done and s.supervisor_pid and not alive(s.supervisor_pid):
        s.settle_dead_supervisor()
    _reply(s.to_dict())
    return 0


def _last_line(path, window=65536):
    """The last whole line of a file (None if it has none), reading only its end."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - window))
        pieces = f.read().split(b"\n")[:-1]  # what follows the last newline is not whole yet
    if size > window:
        pieces = pieces[1:]  # the first piece may be the end of a longer line
    whole = [p for p in pieces if p.strip()]
    return whole[-1] if whole else None


def last_telemetry(run_dir):
    """Reply with the last sample of logs/telemetry.jsonl ({} when there is none yet)."""
    try:
        line = _last_line(RunLayout(run_dir).telemetry)
    except OSError:
        line = None
    try:
        sample = json.loads(line) if line else {}
    except ValueError:
        sample = {}  # a line cut by a full disk: no sample rather than no status at all
    _reply(sample)
    return 0


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_run(run_dir, wait_s):
    """Ask the supervisor to stop the training (it syncs and records why), and wait for it; a
    training left behind by a supervisor that died is killed too, and so is every process the run
    started that left its group (found by the run's mark). True if something was stopped."""
    L = RunLayout(run_dir)
    try:
        s = read_status(L.status)
    except (OSError, ValueError):
        s = None  # unreadable (a full disk, say): what still runs is found by its mark all the same
    stopped = _stop_supervised(L, s, wait_s) if s is not None else False
    # Last, once the supervisor is gone (it would still be syncing what they write), and never
    # while a supervisor of a newer attempt runs: those processes are its own.
    if _running(L):
        return stopped
    return end_marked(L.dir) or stopped


def _stop_supervised(L, s, wait_s):
    stopped = False
    if not s.done and s.supervisor_pid and alive(s.supervisor_pid):
        os.kill(s.supervisor_pid, signal.SIGTERM)
        end = time.monotonic() + wait_s
        while time.monotonic() < end and alive(s.supervisor_pid):
            time.sleep(0.05)
        if alive(s.supervisor_pid):
            _kill_group(s.supervisor_pid)
            _power_off_if_asked(L)  # the supervisor's own last step, which it never reached
            end = time.monotonic() + 2  # a SIGKILL lands when the process next runs, not at once
            while time.monotonic() < end and alive(s.supervisor_pid):
                time.sleep(0.01)
        stopped = True
    for pid in {s.training_pid, s.step_pid} - {None}:
        if not s.done and alive(pid) and runs_for(pid, s.run_id):
            _kill_group(pid)
            stopped = True
    return stopped


def _power_off_if_asked(L):
    """A cloud machine powers off after its run, even when its supervisor had to be killed."""
    try:
        with open(L.config) as f:
            config = SupervisorConfig.from_json(f.read())
    except (OSError, ValueError, TypeError):
        return
    if config.shutdown_after:
        subprocess.call(["sudo", "-n", "shutdown", "-h", "+1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(run_dir, wait_s):
    _reply({"stopped": stop_run(run_dir, wait_s)})
    return 0


def remove(run_dir, wait_s):
    """Stop whatever still runs, then delete the run folder (and nothing else)."""
    stop_run(run_dir, wait_s)
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def resync(run_dir):
    """Run a finished run's final sync again if it did not finish (see supervisor.resync); reply
    with the status after it. Its notes go to supervisor.log: stdout is the reply."""
    import fcntl

    from .supervisor import resync as run_resync

    L = RunLayout(run_dir)
    lock = os.open(L.dir, os.O_RDONLY)  # a lock on the folder itself needs no file (the disk may be full)
    fcntl.flock(lock, fcntl.LOCK_EX)  # two downloads at once sync once, one after the other
    saved = sys.stdout
    try:
        try:
            sys.stdout = open(L.supervisor_log, "a")
        except OSError:
            sys.stdout = open(os.devnull, "w")
        s = run_resync(run_dir)
    finally:
        try:
            sys.stdout.close()
        except OSError:
            pass  # the log's last notes did not fit on the full disk: the reply says it all
        sys.stdout = saved
        os.close(lock)
    _reply(s.to_dict())
    return 0


def list_files(folder):
    """Reply with [path, size] of every file under `folder` (what a store folder holds)."""
    _reply({"files": [[e.path, e.size] for e in wire.scan(folder)]})
    return 0


def toolenv(cache, packages):
    """Make sure the tool venv exists; reply with its python (or the pip error)."""
    from . import toolenv as te
    from .venv import InstallFailed

    os.makedirs(cache, exist_ok=True)
    log = os.path.join(os.path.abspath(cache), "tools-install.log")
    try:
        _reply({"python": te.ensure(os.path.abspath(cache), packages, log)})
    except InstallFailed as e:
        _reply({"error": str(e), "tail": e.tail})
    return 0


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "toolenv":
        return toolenv(args[0], args[1:])
    if cmd == "receive":
        receive(args[0], args[1], mirror=args[2] == "mirror")
        return 0
    if cmd == "send":
        send(args[0])
        return 0
    if cmd == "launch":
        return launch(args[0], then_follow=args[1:] == ["follow"])
    if cmd == "follow":
        from .follow import main as follow_main, parse_offsets

        follow_main(args[0], parse_offsets(args[1:]))
        return 0
    if cmd == "tensorboard":
        from .tensorboard import serve

        return serve(args[0], *args[1:])
    if cmd == "status":
        return status(args[0])
    if cmd == "telemetry":
        return last_telemetry(args[0])
    if cmd == "stop":
        return stop(args[0], float(args[1]))
    if cmd == "remove":
        return remove(args[0], float(args[1]))
    if cmd == "resync":
        return resync(args[0])
    if cmd == "list":
        return list_files(args[0])
    sys.stderr.write("unknown command %r\n" % cmd)
    return 2
