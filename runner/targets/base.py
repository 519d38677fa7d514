"""What every target does: provide a machine, make sure it can be reached, and take it away."""

from __future__ import annotations

from typing import Protocol

from runner.events import EventSink
from runner.journal import Journal, RunRecord
from runner.machine import Machine


class Target(Protocol):
    name: str

    async def provision(self, record: RunRecord, journal: Journal, on_event: EventSink) -> Machine:
        """Create (or reach) the machine; everything it creates is recorded before it exists elsewhere."""
        ...

    async def reattach(self, record: RunRecord, journal: Journal) -> Machine:
        """The run's machine, ready for a connection (e.g. restart the local SSH server after a reboot)."""
        ...

    async def destroy(self, record: RunRecord, journal: Journal, on_event: EventSink) -> None:
        """Remove what trainrig created for this run, and nothing else."""
        ...


def recorded_machine(record: RunRecord) -> Machine:
    """The machine as `up` recorded it (a remote machine needs nothing restarted to be reached)."""
    if record.machine is None:
        from runner.errors import RemoteFailed

        raise RemoteFailed(f"run {record.run_id} has no machine; `trainrig up` it first.")
    return record.machine
