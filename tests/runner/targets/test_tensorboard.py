"""Port forwarding through the run's SSH connection on the `local` target, and `trainrig
tensorboard` with the real TensorBoard where it is installed."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from runner import ssh
from runner.journal import Journal
from runner.remote import venv
from runner.tensorboard import forward_local
from tests.conftest import make_code


@pytest.fixture(scope="module", autouse=True)
def warm_venv(state_home: Path) -> None:
    cache = state_home / "cache" / "venvs"
    cache.mkdir(parents=True, exist_ok=True)
    venv.ensure(str(cache), "", str(cache / "warm.log"))


SERVES_HTTP = """
    import http.server, os, threading, time

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello from the machine " + self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "port.txt"), "w") as f:
        f.write(str(server.server_address[1]))
    time.sleep(60)
"""


def _wait_for(path: Path, timeout: float = 30) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_a_forward_reaches_a_server_on_the_machine_and_skips_a_taken_port(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "web", SERVES_HTTP)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        assert trainrig("start", "web-none", "--no-follow").code == 0
        sandbox_run = state_home / "runs" / "web-none" / "sandbox" / "runs" / "web-none"
        remote_port = int(_wait_for(sandbox_run / "outputs" / "port.txt"))

        async def through_the_tunnel() -> tuple[int, int, bytes]:
            machine = Journal(state_home).load("web-none").machine
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                asked = taken.getsockname()[1]
                async with ssh.connect(machine) as conn:
                    listener, port = await forward_local(conn, remote_port, asked)
                    try:
                        url = f"http://127.0.0.1:{port}/through"
                        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
                    finally:
                        listener.close()
            return asked, port, body

        asked, port, body = asyncio.run(through_the_tunnel())
        assert body == b"hello from the machine /through"
        assert asked < port < asked + 20  # the asked port was taken: the next free one
    finally:
        trainrig("down", "web-none", "--stop", "--discard-outputs")


def test_tensorboard_before_any_training_is_one_clear_sentence(trainrig, tmp_path):
    code = make_code(tmp_path / "early", 'print("never started")\n')
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        done = trainrig("tensorboard", "early-none")
        assert done.code == 2
        assert done.err.strip() == "error: run early-none has no training environment yet: `trainrig start early-none` first."
    finally:
        trainrig("down", "early-none", "--stop", "--discard-outputs")


def test_trainrig_tensorboard_serves_the_runs_metrics_until_ctrl_c(trainrig, popen_trainrig, tmp_path):
    try:
        import tensorboard  # noqa: F401
    except ImportError as e:
        pytest.skip(f"tensorboard is not installed here (pip install -e '.[test]' installs it): {e}")
    code = make_code(tmp_path / "board", """
        import trainrig_helpers as th
        for step in range(5):
            th.log_metrics(step, loss=1.0 / (step + 1))
    """)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        assert trainrig("start", "board-none").code == 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        p = popen_trainrig("tensorboard", "board-none", "--port", str(free))
        line = p.stderr.readline()
        m = re.search(r"TensorBoard for run board-none: (http://localhost:(\d+)/) .*the machine's port (\d+)", line)
        assert m, line + p.stderr.read() if p.poll() is not None else line
        url, local_port, remote_port = m.group(1), int(m.group(2)), int(m.group(3))
        assert local_port == free
        tags = b""
        end = time.monotonic() + 60
        while b'"loss"' not in tags and time.monotonic() < end:  # TensorBoard loads the events soon after start
            tags = urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=10).read()
            time.sleep(0.3)
        assert b'"tensorboard": {"loss"' in tags
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert "TensorBoard stopped; the training is untouched." in err
        # TensorBoard itself ended on the machine (this computer, for the local target).
        end = time.monotonic() + 15
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", remote_port), timeout=1).close()
            except ConnectionRefusedError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("TensorBoard still listens on the machine after Ctrl-C")
    finally:
        trainrig("down", "board-none", "--stop", "--discard-outputs")
