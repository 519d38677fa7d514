"""`trainrig ssh RUN [COMMAND...]` on the `local` target: commands through its embedded SSH server (real
OpenSSH client), a plain shell here in the run's sandbox (the server gives no terminals)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runner import ssh_config
from tests.conftest import make_code, record

RUN = "sshcli-none"


@pytest.fixture
def local_run(trainrig, env, tmp_path, state_home):  # type: ignore[no-untyped-def]
    if shutil.which("ssh") is None:
        pytest.skip("OpenSSH's ssh client is not installed (Debian: apt-get install openssh-client)")
    env["TRAINRIG_SSH_CONFIG"] = str(tmp_path / "dot-ssh" / "config")
    code = make_code(tmp_path / "sshcli", "print('trained')\n")
    up = trainrig("up", str(code), "--dataset-name", "none")
    assert up.code == 0, up.err
    yield RUN
    trainrig("down", RUN, "-y", "--discard-outputs")  # stops its server: no process left


def test_commands_run_on_the_local_machine_over_ssh(trainrig, local_run, state_home):
    hi = trainrig("ssh", RUN, "echo", "hi")
    assert (hi.code, hi.out) == (0, "hi\n"), hi.err
    # several words: each one quoted; one word: a shell command line, as ssh takes it
    words = trainrig("ssh", RUN, "--", "printf", "%s|", "a b", "$HOME", ";", "c")
    assert (words.code, words.out) == (0, "a b|$HOME|;|c|"), words.err
    line = trainrig("ssh", RUN, "echo one | tr o O; exit 3")
    assert (line.code, line.out) == (3, "One\n")
    # before `start`: the login folder (the sandbox); after it, the run's folder
    sandbox = Path(record(state_home, RUN)["machine"]["root"])
    assert trainrig("ssh", RUN, "pwd").out.strip() == str(sandbox)
    assert trainrig("start", RUN).code == 0
    assert trainrig("ssh", RUN, "pwd").out.strip() == str(sandbox / "runs" / RUN)


def test_a_plain_ssh_is_a_shell_here_in_the_sandbox(trainrig, local_run, state_home):
    sandbox = record(state_home, RUN)["machine"]["root"]
    shell = trainrig("ssh", RUN, input="pwd; exit 4\n")
    assert (shell.code, shell.out) == (4, f"{sandbox}\n"), shell.err


def test_the_entry_follows_the_local_server_to_its_new_port(trainrig, local_run, env, state_home):
    """The machine's SSH server killed: `trainrig ssh` starts it again (maybe on another port) and
    the Host entry follows, so plain `ssh trainrig-RUN` works again."""
    user_config = Path(env["TRAINRIG_SSH_CONFIG"])
    alias = ssh_config.host_alias(RUN)

    def plain(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-F", str(user_config), "-o", "BatchMode=yes", alias, *args],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    assert plain("true").returncode == 0
    pid = record(state_home, RUN)["local_server_pid"]
    os.kill(pid, signal.SIGKILL)
    while _running(pid):
        time.sleep(0.01)
    assert plain("true").returncode == 255  # nobody listens on the old port
    assert trainrig("ssh", RUN, "true").code == 0
    assert record(state_home, RUN)["local_server_pid"] != pid
    done = plain("echo", "again")
    assert (done.returncode, done.stdout) == (0, "again\n"), done.stderr
    assert trainrig("down", RUN, "-y", "--discard-outputs").code == 0
    assert f"Host {alias}" not in (state_home / "ssh" / "config").read_text()
    assert plain("true").returncode == 255
    assert trainrig("ssh", RUN, "true").code == 2  # no machine any more: bad input


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_no_machine_or_no_run_is_bad_input(trainrig):
    assert trainrig("ssh", "nosuch-run", "true").code == 2
    assert trainrig("ssh", "Not A Run").code == 2
