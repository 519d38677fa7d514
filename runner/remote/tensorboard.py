"""TensorBoard on the machine, over the run's logs folder, for as long as the runner stays connected.

It listens on 127.0.0.1 only (the runner reaches it through its SSH connection; no port is opened
to anyone else), on a port the system picks. The first line on stdout is JSON: {"port": N} or
{"error": ...}; then TensorBoard runs until stdin closes (the runner went away) or a SIGTERM/SIGHUP
arrives, and is stopped with everything it started.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from .config import RunLayout
from .status import read_status

START_TIMEOUT_S = 90
URL = re.compile(r"http://[^\s/]+:(\d+)/")
FIND = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('tensorboard') else 1)"


def _reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _tail(path, n=5):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip().splitlines()[-n:]
    except OSError:
        return []


def _port(log_path, proc):
    """The port TensorBoard printed in its log, or None if it ended or never said."""
    end = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < end and proc.poll() is None:
        try:
            with open(log_path, "rb") as f:
                m = URL.search(f.read().decode("utf-8", "replace"))
        except OSError:
            m = None
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    return None


def _stop(proc):
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve(run_dir, reload_s="5"):
    L = RunLayout(run_dir)
    try:
        venv_dir = read_status(L.status).venv_dir
    except (OSError, ValueError):
        venv_dir = ""
    if not venv_dir or not os.path.isdir(venv_dir):
        _reply({"error": "no_environment"})
        return 0
    python = os.path.join(venv_dir, "bin", "python")
    if subprocess.call([python, "-c", FIND], stdin=subprocess.DEVNULL) != 0:  # stdin is the runner's channel
        _reply({"error": "not_installed"})
        return 0
    log_path = os.path.join(L.dir, "tensorboard.log")  # beside logs/, not in it: never synced
    with open(log_path, "wb") as log:
        # A file, not a pipe: nobody has to keep reading TensorBoard's chatter for it to go on.
        proc = subprocess.Popen(
            [python, "-m", "tensorboard.main", "--logdir", L.logs, "--host", "127.0.0.1", "--port", "0",
             "--reload_interval", str(reload_s)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: _stop(proc))
    port = _port(log_path, proc)
    if port is None:
        _stop(proc)
        _reply({"error": "did_not_start", "tail": _tail(log_path)})
        return 0
    _reply({"port": port, "pid": proc.pid})

    def wait_for_runner():
        while sys.stdin.buffer.read1(1024):
            pass
        _stop(proc)  # the runner closed the channel: its user pressed Ctrl-C, or the connection died

    threading.Thread(target=wait_for_runner, daemon=True).start()
    rc = proc.wait()
    if rc not in (0, -signal.SIGTERM, -signal.SIGKILL):
        sys.stderr.write("TensorBoard ended (exit %d): %s\n" % (rc, " | ".join(_tail(log_path))))
        return 1
    return 0
