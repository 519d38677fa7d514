"""A preempted cloud machine replaced in its run's stack: `pulumi refresh` (the stack learns that
the instance is stopped or gone), then `pulumi up --replace` of the machine alone, in the run's zone
first, then (gcp) the catalog's other zones for the accelerator. The bucket, the identity and the
keys stay: the outputs synced so far are what the new machine resumes from.

Unlike `Engine.up`, a failed try here never destroys the stack: its bucket holds the run's outputs.
Not exercised against a real cloud (none is reachable from the tests).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from infra import catalog
from infra.catalog import fallback_zones
from infra.engine import Engine
from infra.engine_errors import Failure
from infra.engine_outputs import StackOutputs
from infra.errors import NoCapacity
from infra.project import project_dir, stacks_dir
from infra.stack_config import MachineKeys, write
from runner.events import EventSink, Notice
from runner.journal import Journal, RunRecord

# The resource types that are "the machine" in a run's stack (infra/components/*_machine.py).
MACHINE_TYPES = ("gcp:compute/instance:Instance", "gcp:tpu/v2Vm:V2Vm", "aws:ec2/instance:Instance")


# What the machine resources' outputs say once the cloud has taken the machine away.
GONE_STATES = {"TERMINATED", "STOPPED", "STOPPING", "SUSPENDED", "PREEMPTED", "stopped", "stopping", "terminated",
               "shutting-down", "gone"}


def machine_state(engine: Engine, run_id: str) -> str | None:
    """The cloud's own word on the run's machine after `pulumi refresh`: GCP's instance
    currentStatus, a TPU VM's state, EC2's instanceState; "gone" if refresh found none; None if
    the stack cannot be read (then nothing is concluded)."""
    from pulumi import automation as auto

    try:
        stack = engine._stack(run_id, create=False)
        stack.refresh(on_output=engine.on_output, color="never")
        resources = stack.export_stack().deployment.get("resources", [])
    except (auto.errors.CommandError, OSError):
        return None
    return state_of(resources)


def state_of(resources: list[dict]) -> str | None:
    """The machines' state from a stack's resources; with several (`--nodes N`), one taken away is the
    run's loss (then all of them are replaced), so a gone one's state wins."""
    machines = [r for r in resources if r.get("type") in MACHINE_TYPES]
    if not machines:
        return "gone"
    states = [_state(m.get("outputs", {})) for m in machines]
    return next((s for s in states if s in GONE_STATES), states[0])


def _state(out: dict) -> str | None:
    return str(out.get("currentStatus") or out.get("state") or out.get("instanceState") or "") or None


def _zones(record: RunRecord) -> list[str | None]:
    cloud = record.spec.cloud
    assert cloud is not None
    if record.spec.target == "gcp" and cloud.zone:
        return [cloud.zone, *fallback_zones(cloud.accelerator, cloud.zone)]
    return [cloud.zone]  # aws: the region's availability zone AWS picks


def _machine_urns(stack) -> list[str]:  # type: ignore[no-untyped-def]
    resources = stack.export_stack().deployment.get("resources", [])
    return [r["urn"] for r in resources if r.get("type") in MACHINE_TYPES]


def _replace_in(engine: Engine, record: RunRecord, failure: Failure, on_event: EventSink) -> StackOutputs:
    from pulumi import automation as auto

    stack = engine._stack(record.run_id, create=False)
    try:
        stack.refresh(on_output=engine.on_output, color="never")
        urns = _machine_urns(stack)
        stack.up(replace=urns, on_output=engine.on_output, color="never")
    except auto.errors.CommandError as e:
        raise Engine._explain(e, failure) from e
    on_event(Notice(f"replaced {len(urns)} machine resource(s) of stack {record.run_id}"))
    return engine.outputs(record.run_id)


async def replace_machine(engine: Engine, record: RunRecord, journal: Journal, on_event: EventSink) -> StackOutputs:
    cloud = record.spec.cloud
    assert cloud is not None
    keys = MachineKeys((journal.dir(record.run_id) / "client_key.pub").read_text().strip(),
                       str(journal.key_path(record.run_id, "host_key")))
    zones = _zones(record)
    for i, zone in enumerate(zones):
        if i:
            offer = catalog.resolve(record.spec.target, cloud.accelerator_text, zone=zone, spot=cloud.spot)
            record.spec = replace(record.spec, cloud=replace(cloud, zone=offer.zone, region=offer.region))
            journal.save(record)
        write(stacks_dir(project_dir(journal.root.parent)), record.spec, keys)
        on_event(Notice(f"a new machine for run {record.run_id}" + (f" in {zone}" if zone else "")))
        where = zone or cloud.region or ""
        failure = Failure("up", record.run_id, where=where, elsewhere=tuple(z for z in zones[i + 1:] if z))
        try:
            return await asyncio.to_thread(_replace_in, engine, record, failure, on_event)
        except NoCapacity as e:
            if i + 1 == len(zones):
                raise
            on_event(Notice(f"{zone} has no capacity right now; trying {zones[i + 1]} ({e})"))
    raise AssertionError("unreachable: the loop returns or raises")
