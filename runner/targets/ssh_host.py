"""Target `ssh`: a machine the user already owns, reached with the user's own key.

The host key comes from the user's known_hosts (never trusted on first sight) and is pinned in the
journal at `up`, so a later change of key is refused. trainrig's files live in `~/.trainrig/` there;
destroy removes the run's folder and nothing else (the tools and the venv cache stay for the next run).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import asyncssh

from runner import ssh, tools
from runner.errors import BadInput
from runner.events import EventSink, Notice
from runner.journal import Journal, RunRecord
from runner.machine import Machine
from runner.machine_tools import MachineTools
from runner.targets.base import recorded_machine

ROOT = ".trainrig"
MIN_PYTHON = (3, 8)


def pinned_keys(known_hosts: str, host: str, port: int) -> tuple[str, ...]:
    try:
        db = asyncssh.read_known_hosts(known_hosts)
    except (OSError, ValueError, asyncssh.KeyImportError) as e:
        raise BadInput(f"cannot read {known_hosts}: {e}") from e
    keys = db.match(host, host, port)[0]
    if not keys:
        shown = host if port == 22 else f"[{host}]:{port}"
        scan = f"ssh-keyscan {'-p ' + str(port) + ' ' if port != 22 else ''}{host}"
        raise BadInput(
            f"{shown} is not in {known_hosts}: connect once with ssh and check its fingerprint "
            f"(or `{scan} >> {known_hosts}` after checking it), then try again."
        )
    return tuple(dict.fromkeys(k.export_public_key().decode().strip() for k in keys))


async def install_tools(conn: asyncssh.SSHClientConnection, machine: Machine, python: str = "python3") -> tuple[Machine, str]:
    """Find the machine's `python` (3.8+) and copy trainrig's tools there; returns the machine with
    its interpreter's real path, and the Python version."""
    probe = await ssh.run(conn, [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"])
    version, _, executable = (probe.stdout or b"").decode().strip().partition("\n")
    if probe.exit_status != 0 or tuple(int(x) for x in version.split(".")) < MIN_PYTHON:
        fix = "install one there" if python == "python3" else "give another with --python"
        raise BadInput(f"{machine.address} has no {python} of version 3.8 or newer (found {version or 'none'}): {fix}.")
    # The interpreter itself, not a shim (pyenv's cost ~80 ms per command) or whatever PATH finds later.
    machine = replace(machine, python=executable.strip() or "python3")
    await tools.install(conn, machine)
    return machine, version


class SshTarget:
    name = "ssh"

    async def provision(self, record: RunRecord, journal: Journal, on_event: EventSink) -> Machine:
        spec = record.spec
        assert spec.host is not None
        known = spec.known_hosts or str(Path.home() / ".ssh" / "known_hosts")
        machine = Machine(
            host=spec.host.address, port=spec.host.port, user=spec.host.user,
            host_keys=pinned_keys(known, spec.host.address, spec.host.port),
            client_key=spec.identity_file, python="python3", root=ROOT, venv_cache=f"{ROOT}/venvs",
        )
        async with ssh.connect(machine) as conn:
            machine, version = await install_tools(conn, machine, spec.python or "python3")
        on_event(Notice(f"ssh machine {machine.address}: Python {version}, host key pinned ({ssh.fingerprints(machine.host_keys)})"))
        return machine

    async def reattach(self, record: RunRecord, journal: Journal) -> Machine:
        return recorded_machine(record)

    async def destroy(self, record: RunRecord, journal: Journal, on_event: EventSink) -> None:
        if record.machine is None:
            return
        async with ssh.connect(record.machine) as conn:
            await MachineTools(conn, record.machine).remove(record.run_id, 20)
