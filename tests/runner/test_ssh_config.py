"""`Host trainrig-<run>` entries for OpenSSH (runner/ssh_config.py), tried with a real OpenSSH client
against a real sshd on loopback, through the real `trainrig` command line (the `ssh` target)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import asyncssh
import pytest

from runner import ssh_config
from runner.journal import Journal
from tests.conftest import make_code, record
from tests.sshd import SshdUnavailable, start_sshd

RUN = "sshcfg-none"
USER_LINES = b"# my own settings\nHost mybox\n    HostName 192.0.2.7\n    User me\n\nHost *\n    ServerAliveInterval 17\n"


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if shutil.which("ssh") is None:
        pytest.skip("OpenSSH's ssh client is not installed (Debian: apt-get install openssh-client)")
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except SshdUnavailable as e:
        pytest.skip(str(e))
    yield server
    server.stop()


def _ssh(user_config: Path, *args: str) -> subprocess.CompletedProcess:
    """Plain OpenSSH with the user's config (as `ssh trainrig-RUN` reads ~/.ssh/config), never a prompt."""
    return subprocess.run(["ssh", "-F", str(user_config), "-o", "BatchMode=yes", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def _includes(user_config: Path) -> list[str]:
    return [line for line in user_config.read_text().splitlines() if line.startswith("Include ")]


def test_openssh_reaches_the_run_with_its_pinned_key_until_down(trainrig, env, sshd, tmp_path, state_home):
    user_config = tmp_path / "dot-ssh" / "config"
    user_config.parent.mkdir()
    user_config.write_bytes(USER_LINES)
    os.chmod(user_config, 0o640)
    env["TRAINRIG_SSH_CONFIG"] = str(user_config)
    code = make_code(tmp_path / "sshcfg", """
        import os
        open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "two words.txt"), "w").write("forty-two")
    """)
    up = trainrig("up", str(code), "--dataset-name", "none", "--command", "python train.py",
                  "--target", "ssh", "--host", f"{sshd.user}@127.0.0.1:{sshd.port}",
                  "--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts))
    assert up.code == 0, up.err
    try:
        # The entry and the Include line, once, above the user's own lines, which are kept as they were.
        alias = ssh_config.host_alias(RUN)
        assert f"Host {alias}\n" in (state_home / "ssh" / "config").read_text()
        assert _includes(user_config) == [f"Include {state_home / 'ssh' / 'config'}"]
        assert user_config.read_bytes().endswith(b"\n" + USER_LINES)
        assert user_config.stat().st_mode & 0o777 == 0o640
        assert (state_home / "ssh" / "config").stat().st_mode & 0o777 == 0o600

        start = trainrig("start", RUN)
        assert start.code == 0, start.err
        # `trainrig ssh RUN -- COMMAND` runs in the run's folder, each word quoted, with its exit code.
        cat = trainrig("ssh", RUN, "--", "cat", "outputs/two words.txt")
        assert (cat.code, cat.out) == (0, "forty-two"), cat.err
        assert trainrig("ssh", RUN, "--", "sh", "-c", "exit 7").code == 7
        # Plain OpenSSH: the Host entry alone, with the run's key file and pinned host key.
        plain = _ssh(user_config, alias, "cat", f".trainrig/runs/{RUN}/outputs/'two words.txt'")
        assert (plain.returncode, plain.stdout) == (0, "forty-two"), plain.stderr
        assert _ssh(user_config, alias, "true").returncode == 0
        # scp and rsync read the same entry (scp -O: the test's sshd has no sftp subsystem)
        remote = f"{alias}:.trainrig/runs/{RUN}/outputs/"
        scp = subprocess.run(["scp", "-O", "-F", str(user_config), "-o", "BatchMode=yes", remote + "two\\ words.txt",
                              str(tmp_path / "scp.txt")], capture_output=True, text=True, timeout=60)
        assert scp.returncode == 0 and (tmp_path / "scp.txt").read_text() == "forty-two", scp.stderr
        if shutil.which("rsync"):
            rsync = subprocess.run(["rsync", "-a", "-e", f"ssh -F {user_config} -o BatchMode=yes", remote,
                                    str(tmp_path / "rsynced")], capture_output=True, text=True, timeout=60)
            assert rsync.returncode == 0 and (tmp_path / "rsynced" / "two words.txt").read_text() == "forty-two", rsync.stderr
        assert len(_includes(user_config)) == 1  # up, start and ssh each synced: still one line

        # Another host key on the server (a machine replaced, or someone in between): refused by both.
        pinned = (sshd.dir / "host_key").read_bytes()
        known = (state_home / "ssh" / "known_hosts" / RUN).read_bytes()
        (sshd.dir / "host_key").write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
        try:
            refused = trainrig("ssh", RUN, "--", "echo", "reached")
            assert refused.code == 255 and "reached" not in refused.out
            plain = _ssh(user_config, alias, "echo", "reached")
            assert plain.returncode == 255 and "reached" not in plain.stdout
            assert (state_home / "ssh" / "known_hosts" / RUN).read_bytes() == known  # nothing learnt
        finally:
            (sshd.dir / "host_key").write_bytes(pinned)
    finally:
        down = trainrig("down", RUN, "-y", "--discard-outputs")
    assert down.code == 0, down.err
    assert record(state_home, RUN)["state"] == "destroyed"
    assert f"Host {ssh_config.host_alias(RUN)}" not in (state_home / "ssh" / "config").read_text()
    assert not (state_home / "ssh" / "known_hosts" / RUN).exists()
    assert _ssh(user_config, ssh_config.host_alias(RUN), "true").returncode == 255  # no such host any more
    assert len(_includes(user_config)) == 1 and user_config.read_bytes().endswith(b"\n" + USER_LINES)
    assert trainrig("ssh", RUN, "true").code == 2  # no machine: bad input, the way out printed


def test_no_live_run_leaves_the_users_config_alone(tmp_path, monkeypatch):
    monkeypatch.setenv(ssh_config.ENV, str(tmp_path / "dot-ssh" / "config"))
    synced = ssh_config.sync(Journal(tmp_path / "state"))
    assert synced.entries == () and synced.problem == ""
    assert not (tmp_path / "dot-ssh").exists()
    assert synced.config.read_text() == ssh_config.HEADER


def test_the_include_goes_through_a_link_and_is_added_once(tmp_path):
    """A dotfiles manager's link stays a link; the file it leads to gets the line, once."""
    real = tmp_path / "dotfiles" / "ssh_config"
    real.parent.mkdir()
    real.write_bytes(USER_LINES)
    link = tmp_path / "config"
    link.symlink_to(real)
    ours = tmp_path / "state dir" / "ssh" / "config"
    assert ssh_config.add_include(link, ours) is True
    assert ssh_config.add_include(link, ours) is False
    assert link.is_symlink()
    text = real.read_text()
    assert text.count("Include ") == 1 and f'Include "{ours}"\n' in text and text.endswith("\n" + USER_LINES.decode())
    assert text.index("\nInclude ") < text.index("\nHost ")
    if shutil.which("ssh"):  # OpenSSH reads the quoted name (a space in it), and our entry comes first
        ours.parent.mkdir(parents=True)
        ours.write_text("Host trainrig-x\n    Port 2222\n    ServerAliveInterval 5\n")
        os.chmod(ours, 0o600)
        seen = subprocess.run(["ssh", "-G", "-F", str(link), "trainrig-x"], capture_output=True, text=True, check=True).stdout
        assert "port 2222" in seen.splitlines() and "serveraliveinterval 5" in seen.splitlines()
