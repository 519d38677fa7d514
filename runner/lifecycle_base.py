"""What every part of the lifecycle shares: the journal, the event sink, phases, and the run's machine."""

from __future__ import annotations

from runner.errors import NoMachine
from runner.events import EventSink, PhaseChanged, ignore
from runner.journal import Journal, RunRecord
from runner.machine import Machine
from runner.restarting import CLOUD_STATE_EVERY_S
from runner.targets import get_target


class LifecycleBase:
    def __init__(self, journal: Journal | None = None, on_event: EventSink = ignore):
        self.journal = journal or Journal()
        self.emit = on_event
        self._state_asked = -CLOUD_STATE_EVERY_S  # when the cloud was last asked about a silent machine

    # -- helpers --------------------------------------------------------------------------------
    def _phase(self, record: RunRecord, phase: str, detail: str = "") -> None:
        record.mark(phase)
        self.journal.save(record)
        self.emit(PhaseChanged(phase, detail))

    def _live(self, run_id: str) -> RunRecord:
        record = self.journal.load(run_id)
        if record.state not in ("up", "started", "finished") or record.machine is None:
            raise NoMachine(run_id, record.state)
        return record

    async def _machine(self, record: RunRecord) -> Machine:
        return await get_target(record.spec.target).reattach(record, self.journal)


def why(e: BaseException) -> str:
    reason = getattr(e, "reason", "") or (e.strerror if isinstance(e, OSError) else "")
    return reason or type(e).__name__
