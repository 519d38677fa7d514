"""The Automation API wrapper's set-up: what happens on a computer without the Pulumi CLI (this one),
where state and secrets go, and that `pulumi` is only imported by the wrapper."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from infra import engine
from infra.engine import Engine, check_installed, engine_env, passphrase_file
from infra.errors import EngineMissing


@pytest.fixture
def no_pulumi_cli(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """PATH and HOME without any Pulumi CLI (this machine has none anyway; this makes sure)."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + ":/usr/bin:/bin")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if engine.find_pulumi() is not None:
        pytest.skip(f"a Pulumi CLI is installed at {engine.find_pulumi()}: the missing-CLI message cannot be shown here")


def test_no_pulumi_cli_says_how_to_install_it(no_pulumi_cli):
    with pytest.raises(EngineMissing) as e:
        check_installed("gcp")
    assert "Pulumi CLI is not installed" in str(e.value)
    assert "curl -fsSL https://get.pulumi.com | sh" in str(e.value)
    assert e.value.exit_code == 2


def test_the_engine_itself_refuses_without_the_cli(no_pulumi_cli, tmp_path):
    eng = Engine(tmp_path, tmp_path / "state")
    with pytest.raises(EngineMissing, match="get.pulumi.com"):
        eng.outputs("yolo-beer")


def test_a_missing_cloud_extra_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(engine.EXTRAS, "gcp", "pulumi_gcp_not_installed_here")
    with pytest.raises(EngineMissing, match=r"pip install -e '\.\[gcp\]'"):
        check_installed("gcp")


def test_state_is_local_and_the_passphrase_private_unless_told_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    env = engine_env(tmp_path)
    assert env["PULUMI_BACKEND_URL"] == (tmp_path / "pulumi").as_uri()
    assert (tmp_path / "pulumi").is_dir()
    secret = passphrase_file(tmp_path)
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(secret)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    first = secret.read_text()
    assert len(first) >= 32
    assert passphrase_file(tmp_path).read_text() == first  # made once, never replaced
    assert env["PULUMI_PYTHON_CMD"] == sys.executable

    monkeypatch.setenv("PULUMI_BACKEND_URL", "gs://team-pulumi-state")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "team secret")
    team = engine_env(tmp_path)
    assert team["PULUMI_BACKEND_URL"] == "gs://team-pulumi-state"
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in team


def test_no_cloud_sdk_is_imported_by_the_command_line_or_the_runner():
    code = ("import sys, tui.cli, runner.lifecycle, runner.targets.cloud, infra.engine, infra.stack_config; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_gcp', 'pulumi_aws')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
