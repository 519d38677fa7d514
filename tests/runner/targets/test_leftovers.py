"""Nothing left running on the `local` target: one SSH server per run however many commands
reconnect at once, no process of the training after `down` (also those that left its process group),
no machine-side follower after its client was killed. Every fault is injected for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.remote import venv
from tests import leftovers
from tests.conftest import ROOT, make_code, record

QUIET = """
import time
print("ready", flush=True)
time.sleep(300)
"""


@pytest.fixture(scope="module", autouse=True)
def warm_venv(state_home: Path) -> None:
    cache = state_home / "cache" / "venvs"
    cache.mkdir(parents=True, exist_ok=True)
    venv.ensure(str(cache), "", str(cache / "warm.log"))


def _pids(*needles: str, env: str | None = None) -> list[int]:
    """Live processes whose command line holds every needle (and whose environment holds `env`)."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if not zombie and all(n in cmd for n in needles) and (env is None or env.encode() in environ):
            found.append(int(name))
    return found


def _until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def _down(trainrig, run_id: str) -> None:  # type: ignore[no-untyped-def]
    done = trainrig("down", run_id, "--stop", "--discard-outputs")
    assert done.code == 0, done.err


def test_two_followers_reconnecting_at_once_start_one_server_and_down_stops_it(trainrig, popen_trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "solo", QUIET)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    sandbox = str(state_home / "runs" / "solo-none" / "sandbox")
    servers = lambda: _pids("runner.targets.local_server", sandbox)  # noqa: E731
    try:
        assert trainrig("start", "solo-none", "--no-follow").code == 0
        os.kill(record(state_home, "solo-none")["local_server_pid"], signal.SIGKILL)
        assert _until(lambda: servers() == [], 5)
        followers = [popen_trainrig("logs", "solo-none", "-f") for _ in range(2)]
        for f in followers:
            assert f.stdout.readline() == "ready\n", f.stderr.read() if f.poll() is not None else ""
        assert servers() == [record(state_home, "solo-none")["local_server_pid"]]
    finally:
        _down(trainrig, "solo-none")
    assert servers() == []


def test_down_ends_what_the_training_started_that_left_its_process_group(trainrig, tmp_path, state_home):
    marker = f"trainrig-escaped-{os.getpid()}"
    code = make_code(tmp_path / "escape", f"""
        import os, time
        if os.fork() == 0:  # double fork + setsid: out of the training's group and session
            os.setsid()
            if os.fork() == 0:
                os.environ["MARK"] = "{marker}"
                os.execvp("sleep", ["sleep", "300"])
            os._exit(0)
        os.wait()
        print("left a sleeper behind", flush=True)
    """)
    done = trainrig("run", str(code), "--dataset-name", "none", "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    assert done.out == "left a sleeper behind\n"
    run_dir = state_home / "runs" / "escape-none" / "sandbox" / "runs" / "escape-none"
    assert _pids("sleep", env=f"MARK={marker}") == []
    assert _pids(env=f"TRAINRIG_RUN_DIR={run_dir}") == []


@pytest.mark.parametrize("client", [["logs", "-f"], ["start"]], ids=["logs-f", "start"])
def test_a_killed_clients_follower_on_the_machine_ends_within_seconds(client, trainrig, popen_trainrig, tmp_path, state_home):
    name = f"quiet{client[0]}"
    code = make_code(tmp_path / name, QUIET)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    rid = f"{name}-none"
    run_dir = str(state_home / "runs" / rid / "sandbox" / "runs" / rid)
    try:
        if client[0] == "logs":
            assert trainrig("start", rid, "--no-follow").code == 0
        p = popen_trainrig(client[0], rid, *client[1:])
        assert p.stdout.readline() == "ready\n", p.stderr.read() if p.poll() is not None else ""
        # `follow`, or `launch ... follow` (whose fork, the supervisor, has the same command line)
        supervisor = json.loads((Path(run_dir) / "status.json").read_text())["supervisor_pid"]
        machine_side = lambda: [q for q in _pids("launch.py", "follow", run_dir) if q != supervisor]  # noqa: E731
        assert len(machine_side()) == 1
        p.kill()  # kill -9: no goodbye to the machine; the training stays quiet for minutes
        p.wait()
        assert _until(lambda: machine_side() == [], 3), machine_side()
    finally:
        _down(trainrig, rid)


def test_a_follower_whose_reader_closed_its_pipe_ends_at_once(tmp_path):
    """As under OpenSSH's sshd, which closes the command's pipes when its client is gone."""
    from runner.remote.status import Status, write_status

    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "logs" / "train.log").write_bytes(b"one line\n")
    # A training under way, quiet, its supervisor alive (this process stands in for it).
    write_status(str(run_dir / "status.json"), Status(run_id="quiet-none", phase="training", supervisor_pid=os.getpid()))
    p = subprocess.Popen([sys.executable, "-c", "import sys; from runner.remote.main import main; main(sys.argv[1:])",
                          "follow", str(run_dir), "0"], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        got = b""
        while not got.endswith(b"one line\n"):  # the status, then the log: now it waits, quiet
            got += os.read(p.stdout.fileno(), 1 << 16)
        p.stdout.close()
        p.wait(3)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_the_leak_check_finds_a_process_a_test_left():
    before = leftovers.running()
    p = subprocess.Popen(["sleep", "60"], env={**os.environ, "TRAINRIG_RUN_ID": "leaked-none"}, start_new_session=True)
    try:
        assert _until(lambda: p.pid in {x.pid for x in leftovers.running() - before}, 5)
        leftovers.kill(leftovers.running() - before)
        assert p.wait(5) == -signal.SIGKILL
        assert leftovers.running() - before == set()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
