"""The UI in a real terminal: tmux runs `trainrig` at 80x24, keys go in with send-keys, the screen
comes back with capture-pane. Skipped (with the reason) where tmux is not installed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from infra.spec import EntryPoint, RunSpec
from runner.journal import Journal, RunRecord


def _screen(tmux: list[str]) -> str:
    return subprocess.run([*tmux, "capture-pane", "-p", "-t", "ui"], capture_output=True, text=True).stdout


def _wait_for(tmux: list[str], text: str, timeout: float = 30.0, gone: bool = False) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = _screen(tmux)
        if (text in screen) != gone:
            return screen
        time.sleep(0.2)  # polling the terminal: tmux tells nobody when a pane changes
    raise AssertionError(f"{text!r} never {'left' if gone else 'appeared on'} the screen:\n{_screen(tmux)}")


def test_the_ui_in_tmux_shows_the_runs_helps_and_quits(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux): the UI was not driven in a real terminal")
    home = tmp_path / "home"
    spec = RunSpec(code_name="tmuxed", dataset_name="none", code_path=str(tmp_path), entry=EntryPoint(module="train"))
    Journal(home).save(RunRecord(spec=spec, state="destroyed", outcome="succeeded", final_download=True))
    tmux = ["tmux", "-L", f"trainrig-test-{uuid.uuid4().hex[:8]}"]
    cmd = (f"TRAINRIG_HOME={shlex.quote(str(home))} {shlex.quote(sys.executable)} -m tui.cli; "
           "echo trainrig-exit-$?; sleep 60")
    env = dict(os.environ, TERM="xterm-256color")
    subprocess.run([*tmux, "new-session", "-d", "-s", "ui", "-x", "80", "-y", "24", "-c", os.getcwd(), cmd],
                   check=True, env=env)
    try:
        _wait_for(tmux, "tmuxed-none")
        screen = _wait_for(tmux, "^p")  # the footer's keys: composed once the screen's bindings are known
        assert "tmuxed-none" in screen and "destroyed" in screen  # the run and its phase
        subprocess.run([*tmux, "send-keys", "-t", "ui", "?"], check=True)
        _wait_for(tmux, "filter the runs")  # the help screen's table of keys
        subprocess.run([*tmux, "send-keys", "-t", "ui", "Escape"], check=True)
        _wait_for(tmux, "filter the runs", gone=True)  # closed (an Escape then a key at once would read as alt+key)
        assert "1 run, 0 holding resources" in _screen(tmux)
        subprocess.run([*tmux, "send-keys", "-t", "ui", "q"], check=True)
        _wait_for(tmux, "trainrig-exit-0")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_without_a_terminal_trainrig_alone_is_bad_input_and_starts_nothing(trainrig):
    done = trainrig()  # the fixture's stdin and stdout are pipes
    assert done.code == 2 and done.out == ""
    assert [ln for ln in done.err.splitlines() if ln.startswith("error:")] and "`trainrig --help`" in done.err
    assert trainrig("ui").code == 2
