"""What every part of the lifecycle shares: the journal, the event sink, phases, and the run's machine."""

from __future__ import annotations

import contextvars
import dataclasses
import functools

from runner.errors import NoMachine
from runner.events import EventSink, PhaseChanged, ignore
from runner.journal import Journal, RunRecord
from runner.machine import Machine
from runner.restarting import CLOUD_STATE_EVERY_S
from runner.states import HAS_MACHINE
from runner.targets import get_target

# The run the lifecycle works on now, for the events it emits (asyncio tasks and to_thread copy it).
_RUN: contextvars.ContextVar[str] = contextvars.ContextVar("trainrig_run", default="")


def for_run(method):  # type: ignore[no-untyped-def]
    """Marks a lifecycle step on one run (its first argument: a run id, or a spec): every event it
    emits, from any depth, carries that run's id."""

    @functools.wraps(method)
    async def step(self, first, *args, **kwargs):  # type: ignore[no-untyped-def]
        token = _RUN.set(first if isinstance(first, str) else first.run_id)
        try:
            return await method(self, first, *args, **kwargs)
        finally:
            _RUN.reset(token)

    return step


class LifecycleBase:
    def __init__(self, journal: Journal | None = None, on_event: EventSink = ignore):
        self.journal = journal or Journal()

        def emit(event):  # type: ignore[no-untyped-def]
            run = _RUN.get()
            on_event(dataclasses.replace(event, run_id=run) if run and not event.run_id else event)

        self.emit = emit
        self._state_asked = -CLOUD_STATE_EVERY_S  # when the cloud was last asked about a silent machine

    # -- helpers --------------------------------------------------------------------------------
    def _phase(self, record: RunRecord, phase: str, detail: str = "") -> None:
        record.mark(phase)
        self.journal.save(record)
        self.emit(PhaseChanged(phase, detail))

    def _live(self, run_id: str) -> RunRecord:
        record = self.journal.load(run_id)
        if record.state not in HAS_MACHINE or record.machine is None:
            raise NoMachine(run_id, record.state)
        return record

    async def _machine(self, record: RunRecord) -> Machine:
        return await get_target(record.spec.target).reattach(record, self.journal)


def why(e: BaseException) -> str:
    reason = getattr(e, "reason", "") or (e.strerror if isinstance(e, OSError) else "")
    return reason or type(e).__name__
