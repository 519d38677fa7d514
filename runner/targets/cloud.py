"""Targets `gcp` and `aws`: a machine rented for one run, made and destroyed by the run's Pulumi stack.

`provision` makes the run's two SSH keys (login and host, 0600 in the journal), writes the stack
config (so plain `pulumi up -s <run>` works on the same stack), runs `pulumi up` through the
Automation API, then waits until the machine answers with the pinned host key and copies the tools.
The host key was made here and handed to the machine at boot (as a Pulumi secret), so the first
connection is already verified: nothing is trusted on first sight.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import asyncssh

from infra import catalog
from infra.catalog import fallback_zones
from infra.engine import Engine
from infra.engine_errors import Failure
from infra.engine_outputs import NodeEndpoint, StackOutputs
from infra.errors import NoCapacity
from infra.project import project_dir, stacks_dir
from infra.stack_config import MachineKeys, write
from runner import ssh
from runner.errors import AuthFailed, HostKeyMismatch, Unreachable
from runner.events import EngineLine, EventSink, Notice
from runner.journal import Journal, RunRecord, utc_now
from runner.targets.base import recorded_machine
from runner.machine import Machine
from runner.targets.ssh_host import install_tools

ROOT = ".trainrig"
SSH_PORT = 22  # every cloud machine's sshd (the firewall opens this one alone)
BOOT_WAIT_S = 15 * 60  # first boot of a Deep Learning image, driver set-up included
RETRY_S = 5.0
KEY_GRACE_S = 3 * 60  # the guest agent installs metadata keys seconds after the host key is in place


def _engine(journal: Journal, on_event: EventSink) -> Engine:
    return Engine(project_dir(journal.root.parent), journal.root.parent, on_output=lambda line: on_event(EngineLine(line.rstrip())))


def _new_key(journal: Journal, run_id: str, name: str) -> tuple[Path, str]:
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"trainrig {run_id} {name}")
    path = journal.write_private(run_id, name, key.export_private_key())
    public = key.export_public_key().decode().strip()
    (path.parent / f"{name}.pub").write_text(public + "\n")
    return path, public


def _failure(record: RunRecord, tried: tuple[str, ...] = ()) -> Failure:
    cloud = record.spec.cloud
    assert cloud is not None
    where = cloud.zone or cloud.region or ""
    others = tuple(p for p in catalog.places(record.spec.target, cloud.accelerator) if p != where and p not in tried)
    return Failure("up", record.run_id, where=where, elsewhere=others)


async def wait_for_ssh(machine: Machine, deadline_s: float = BOOT_WAIT_S, on_event: EventSink = lambda _e: None,
                       retry_s: float = RETRY_S, key_grace_s: float = KEY_GRACE_S) -> None:
    """Until the machine answers with the pinned host key and takes our login key. While it boots,
    a refused connection, another host key (the image's own, before the boot script replaced it) or
    a refused key (not yet installed) all mean "not yet"; after the deadline they are errors. A
    machine that shows the pinned host key but keeps refusing the login key for `key_grace_s` never
    will (on GCP: OS Login enforced by the organisation ignores metadata keys): no use billing on."""
    start = time.monotonic()
    refused_since: float | None = None
    told = False
    while True:
        try:
            async with ssh.connect(machine, timeout=10):
                return
        except AuthFailed as e:
            # The host key was verified before the login was refused: the boot script ran.
            refused_since = refused_since or time.monotonic()
            if time.monotonic() - refused_since > key_grace_s:
                raise AuthFailed(
                    f"{machine.address} shows the run's host key but refuses the run's login key after "
                    f"{key_grace_s / 60:.0f} minutes; on GCP, an organisation policy that enforces OS Login "
                    "(constraints/compute.requireOsLogin) ignores the keys trainrig gives the machine: use a project "
                    "without it, or `trainrig down` the run."
                ) from e
            last: Exception = e
        except (Unreachable, HostKeyMismatch) as e:
            refused_since, last = None, e
        if time.monotonic() - start > deadline_s:
            raise Unreachable(f"{machine.address} did not become reachable in {deadline_s / 60:.0f} minutes ({last}); "
                              "its serial console in the cloud console shows why.") from last
        if not told:
            on_event(Notice(f"waiting for {machine.host} to boot and accept SSH with its pinned host key"))
            told = True
        await asyncio.sleep(retry_s)


async def _up(engine: Engine, failure: Failure, on_event: EventSink) -> StackOutputs:
    up = asyncio.ensure_future(asyncio.to_thread(engine.up, failure))
    try:
        return await asyncio.shield(up)
    except asyncio.CancelledError:
        # Ctrl-C: Pulumi got the interrupt too and cancels its update. Destroying before it has
        # ended would only meet the stack's lock, so wait for it, then let the caller clean up.
        on_event(Notice("interrupted: waiting for pulumi up to stop before destroying what it made"))
        await asyncio.wait([up])
        raise


async def _ready(machine: Machine, on_event: EventSink, boot_wait_s: float) -> Machine:
    await wait_for_ssh(machine, boot_wait_s, on_event=on_event)
    async with ssh.connect(machine) as conn:
        machine, version = await install_tools(conn, machine)
    on_event(Notice(f"{machine.address}: Python {version}, trainrig's tools installed"))
    return machine


class CloudTarget:
    def __init__(self, name: str):
        self.name = name

    async def provision(self, record: RunRecord, journal: Journal, on_event: EventSink) -> Machine:
        rid = record.run_id
        client_key, client_public = _new_key(journal, rid, "client_key")
        host_key, host_public = _new_key(journal, rid, "host_key")
        engine = _engine(journal, on_event)
        await asyncio.to_thread(engine.create, rid)  # first: refuses a stack this run did not make
        record.stack_created = True
        journal.save(record)
        keys = MachineKeys(client_public, str(host_key))
        outputs = await self._up_somewhere(engine, record, journal, keys, on_event)
        record.stack = outputs
        journal.save(record)
        return await self._reach(record, outputs, client_key, host_public, on_event)

    async def _reach(self, record: RunRecord, outputs: StackOutputs, client_key: Path, host_public: str,
                     on_event: EventSink, port: int = SSH_PORT, boot_wait_s: float = BOOT_WAIT_S) -> Machine:
        """The stack's machines once each answers with the pinned host key, with trainrig's tools on it:
        rank 0 is returned (the record's `machine`); with several (`--nodes N`, a TPU pod slice's workers)
        `record.nodes` holds them all in rank order, each with the address its peers reach it at."""
        rid = record.run_id
        endpoints = outputs.nodes or (NodeEndpoint(outputs.address, "", outputs.host_key),)
        if any(e.host_key.split()[:2] != host_public.split()[:2] for e in (outputs, *endpoints)):
            raise HostKeyMismatch(f"run {rid}'s stack reports a host key that is not the one trainrig made for it; "
                                  f"refusing to connect (`trainrig down {rid}` removes the stack).")
        machines = [Machine(
            host=e.address, port=port, user=outputs.ssh_user, host_keys=(host_public,), client_key=str(client_key),
            python="python3", root=ROOT, venv_cache=f"{ROOT}/venvs", shutdown_after=True, private_host=e.private_address,
        ) for e in endpoints]
        hosts = ", ".join(m.host for m in machines)
        on_event(Notice(f"{self.name} machine{'s' if len(machines) > 1 else ''} {hosts} up (${outputs.hourly_price:.2f}/hour); "
                        f"host key pinned ({ssh.fingerprints(machines[0].host_keys)})"))
        # All at once; one that never answers fails the whole run (the others' waits are cancelled, and
        # the caller destroys the stack), with that node's own error, not a group of them.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(_ready(m, on_event, boot_wait_s)) for m in machines]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        ready = [t.result() for t in tasks]
        record.nodes = ready if len(ready) > 1 else []
        return ready[0]

    async def _up_somewhere(self, engine: Engine, record: RunRecord, journal: Journal, keys: MachineKeys,
                            on_event: EventSink) -> StackOutputs:
        """`pulumi up` in the run's zone; with --any-zone, on "no capacity" in the next zones too
        (a failed up has destroyed what it made, so each try starts clean)."""
        cloud = record.spec.cloud
        assert cloud is not None
        zones = [cloud.zone] + (fallback_zones(cloud.accelerator, cloud.zone) if cloud.any_zone and cloud.zone else [])
        for i, zone in enumerate(zones):
            if i:
                offer = catalog.resolve(record.spec.target, cloud.accelerator_text, zone=zone, spot=cloud.spot)
                record.spec = replace(record.spec, cloud=replace(cloud, zone=offer.zone, region=offer.region))
                journal.save(record)
            config = write(stacks_dir(project_dir(journal.root.parent)), record.spec, keys)
            on_event(Notice(f"stack config {config} written; pulumi up -s {record.run_id}"
                            + (f" (zone {zone})" if cloud.any_zone else "")))
            try:
                return await _up(engine, _failure(record, tuple(zones[:i])), on_event)
            except NoCapacity as e:
                if i + 1 == len(zones):
                    raise
                on_event(Notice(f"{zone} has no capacity right now; trying {zones[i + 1]} ({e})"))
        raise AssertionError("unreachable: the loop returns or raises")

    async def reattach(self, record: RunRecord, journal: Journal) -> Machine:
        if record.machine_released_at:  # no SSH to an address the cloud may have given to another machine
            raise Unreachable(released_text(record))
        return recorded_machine(record)

    async def reprovision(self, record: RunRecord, journal: Journal, on_event: EventSink) -> Machine:
        """A new machine in the run's stack after a preemption (its bucket, identity and keys stay)."""
        from runner.targets.cloud_restart import replace_machine

        outputs = await replace_machine(_engine(journal, on_event), record, journal, on_event)
        record.stack = outputs
        journal.save(record)
        host_public = (journal.dir(record.run_id) / "host_key.pub").read_text().strip()
        return await self._reach(record, outputs, journal.key_path(record.run_id, "client_key"), host_public, on_event)

    async def destroy(self, record: RunRecord, journal: Journal, on_event: EventSink) -> None:
        """Everything of the stack, whatever state it is in (also after a failed or interrupted up);
        never a stack of the same name that this run did not make."""
        if not record.stack_created:
            return
        await asyncio.to_thread(_engine(journal, on_event).destroy, record.run_id)
        await asyncio.to_thread(sweep, record, on_event)


def released_text(record: RunRecord) -> str:
    rid = record.run_id
    return (f"run {rid}'s TPU machine was deleted at {record.machine_released_at}, once its outputs were safe in its "
            f"bucket: `trainrig download {rid}` gets them from there, `trainrig down {rid}` removes the rest of its stack")


async def release_machine(record: RunRecord, journal: Journal, on_event: EventSink) -> None:
    """Delete a TPU run's node alone (runner/tpu_release.py says when): a TPU VM whose guest halted
    may still bill. Recorded once deleted (a retry after a crash finds no node and records it);
    from then on its status, log and outputs are read from the bucket."""
    urns = await asyncio.to_thread(_engine(journal, on_event).release_tpu, record.run_id)
    record.machine_released_at = utc_now()
    journal.save(record)
    on_event(Notice(f"run {record.run_id}'s TPU machine is deleted ({len(urns)} node(s)); its bucket stays until "
                    f"`trainrig down {record.run_id}`"))


def sweep(record: RunRecord, on_event: EventSink) -> None:
    """After the stack is destroyed: what still carries the run's label (made by an interrupted `up`
    that the stack never recorded) is found in the run's place and deleted; raises if it cannot be,
    so the run stays `destroying` and `trainrig down` tries again."""
    from runner.leftovers import sweep_run

    cloud = record.spec.cloud
    assert cloud is not None

    def told(d) -> None:  # type: ignore[no-untyped-def]
        f = d.leftover
        on_event(Notice(f"{f.cloud} {f.kind} {f.id} was left behind by run {f.run_id}, outside its stack: "
                        + (f"could not delete it ({d.error})" if d.error else "deleted")))

    sweep_run(record.spec.target, record.run_id, cloud.region, cloud.project, told)
