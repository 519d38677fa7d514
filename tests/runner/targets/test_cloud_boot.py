"""A cloud machine's first minutes, against a real OpenSSH sshd: until the boot script has put the
run's host key in place, the machine answers with another key; trainrig waits instead of trusting it,
and connects as soon as the pinned key is served."""

from __future__ import annotations

import asyncio
import os
import signal

import asyncssh
import pytest

from runner.errors import AuthFailed, Unreachable
from runner.machine import Machine
from runner.targets.cloud import wait_for_ssh
from tests.sshd import SshdUnavailable, start_sshd


@pytest.fixture
def sshd(tmp_path):  # type: ignore[no-untyped-def]
    try:
        server = start_sshd(tmp_path / "sshd")
    except SshdUnavailable as e:
        pytest.skip(str(e))
    yield server
    server.stop()


def _machine(sshd, pinned: asyncssh.SSHKey) -> Machine:  # type: ignore[no-untyped-def]
    return Machine(host="127.0.0.1", port=sshd.port, user=sshd.user, host_keys=(pinned.export_public_key().decode().strip(),),
                   client_key=str(sshd.client_key), python="python3", root=".trainrig", venv_cache=".trainrig/venvs")


def test_another_host_key_is_never_accepted_and_ends_as_unreachable(sshd):
    run_key = asyncssh.generate_private_key("ssh-ed25519")  # never installed on this machine
    with pytest.raises(Unreachable, match="did not become reachable") as e:
        asyncio.run(wait_for_ssh(_machine(sshd, run_key), deadline_s=1.5, retry_s=0.3))
    assert "not the pinned one" in str(e.value.__cause__)


def test_connects_once_the_boot_script_has_installed_the_run_host_key(sshd):
    run_key = asyncssh.generate_private_key("ssh-ed25519")
    notices = []

    async def boot_script_later() -> None:
        await asyncio.sleep(1.0)
        (sshd.dir / "host_key").write_bytes(run_key.export_private_key())
        os.kill(sshd.proc.pid, signal.SIGHUP)  # sshd re-executes itself and reads its host keys again

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        swap = asyncio.create_task(boot_script_later())
        await wait_for_ssh(_machine(sshd, run_key), deadline_s=20, on_event=notices.append, retry_s=0.3)
        await swap
        return loop.time() - t0

    waited = asyncio.run(scenario())
    assert waited >= 1.0  # it did not get in before the key was there
    assert waited < 15
    assert any("pinned host key" in n.text for n in notices)


def test_a_login_key_refused_for_good_stops_the_wait_early_with_the_os_login_hint(sshd):
    host_key = asyncssh.read_private_key(str(sshd.dir / "host_key"))  # the right host key ...
    stranger = asyncssh.generate_private_key("ssh-ed25519")  # ... but a login key the machine never got
    (sshd.dir / "stranger").write_bytes(stranger.export_private_key())
    os.chmod(sshd.dir / "stranger", 0o600)
    machine = _machine(sshd, host_key)
    machine = Machine(**{**machine.__dict__, "client_key": str(sshd.dir / "stranger")})
    with pytest.raises(AuthFailed, match="OS Login") as e:
        asyncio.run(wait_for_ssh(machine, deadline_s=60, retry_s=0.3, key_grace_s=1.0))
    assert e.value.exit_code == 2
