"""Following a run, for Lifecycle: its log, metrics, telemetry and status from byte offsets,
reconnecting when the connection drops, and reading the end from the bucket once a cloud machine
has powered itself off."""

from __future__ import annotations

import asyncio
import time

import asyncssh

from runner import restarts, ssh
from runner.buckets import stored_log, stored_status
from runner.errors import AuthFailed, HostKeyMismatch, RemoteFailed, Unreachable
from runner.events import EventSink, LogChunk, Notice, PhaseChanged, Progress, StatusChanged
from runner.follow import Offsets, follow
from runner.journal import RunRecord
from runner.lifecycle_base import LifecycleBase, for_run
from runner.machine import Machine
from runner.remote.status import Status
from runner.states import RunState
from runner.tpu_release import release_if_done

RECONNECT_FOR_S = 120.0


class Following(LifecycleBase):
    async def _follow(
        self, record: RunRecord, offsets: Offsets, conn: asyncssh.SSHClientConnection | None = None,
        proc: asyncssh.SSHClientProcess | None = None, machine: Machine | None = None,
    ) -> Status:
        """Stream the followed files from `offsets` until the run ends; reconnects when the
        connection drops, and carries a run whose machine was taken away onto a new one."""
        while True:
            status, offsets = await self._follow_attempt(record, offsets, conn, proc, machine)
            now = self.journal.load(record.run_id)
            if not (restarts.restartable(now, status) or restarts.replaced(now, status)):
                self._remember_outcome(record.run_id, status)
                # A halted TPU VM may still bill: its node goes once the outputs are in the bucket.
                await release_if_done(self.journal.load(record.run_id), status, self.journal, self.emit)
                return status
            record, offsets = await self._restart(status, offsets)
            conn = proc = machine = None

    async def _follow_attempt(
        self, record: RunRecord, offsets: Offsets, conn: asyncssh.SSHClientConnection | None,
        proc: asyncssh.SSHClientProcess | None, machine: Machine | None,
    ) -> tuple[Status, Offsets]:
        if conn is not None:
            machine = machine or await self._machine(record)  # else each try below reattaches (or reads the bucket)
        last_news = time.monotonic()
        shown = 0  # phases of the machine's status already reported
        warning = ""  # the machine's warning last reported

        def on_event(event):  # type: ignore[no-untyped-def]
            nonlocal shown, last_news, offsets, warning
            last_news = time.monotonic()
            offsets = offsets.after(event)  # a reconnect resumes right after what was shown
            if isinstance(event, StatusChanged):
                # Every phase once, in order, even those that came and went between two looks.
                if len(event.status.phases) < shown:
                    shown = 0  # a new attempt started
                for phase, _at in event.status.phases[shown:]:
                    self.emit(PhaseChanged(phase, _phase_detail(event.status, phase)))
                shown = len(event.status.phases)
                if event.status.phase == "pulling dataset" and event.status.pull_progress:
                    nbytes, files = event.status.pull_progress
                    self.emit(Progress("dataset", nbytes, 0, files))
                if event.status.warning != warning:
                    warning = event.status.warning
                    self.emit(Notice(f"warning from the machine: {warning}" if warning else "the machine's warning has cleared"))
            self.emit(event)

        while True:
            try:
                if conn is not None:
                    status, offsets = await follow(conn, machine, record.run_id, offsets, on_event, proc)
                else:
                    machine = await self._machine(record)  # the local server may need a restart
                    async with ssh.connect(machine) as c:
                        status, offsets = await follow(c, machine, record.run_id, offsets, on_event, None)
                break
            except (RemoteFailed, Unreachable, AuthFailed, HostKeyMismatch) as e:
                conn = proc = None
                if record.stack is not None:
                    # A cloud machine powers off (and refuses logins) after its last sync: the
                    # end of the log and the outcome are in its bucket.
                    ended = await self._ended_in_bucket(record, offsets, on_event) or await self._cloud_machine_gone(record)
                    if ended is not None:
                        status = ended
                        break
                elif isinstance(e, (AuthFailed, HostKeyMismatch)):
                    raise
                # Give up only after RECONNECT_FOR_S without any news, however long the run.
                if time.monotonic() - last_news > RECONNECT_FOR_S:
                    raise
                self.emit(Notice(f"lost the connection ({e}); reconnecting, the training goes on"))
                await asyncio.sleep(2)
        assert status is not None
        return status, offsets

    async def _ended_in_bucket(self, record: RunRecord, offsets: Offsets, on_event: EventSink) -> Status | None:
        """The run's outcome from its bucket if it has ended there, after showing the rest of its log
        from `offsets.log`; None while it has not ended (metrics and telemetry are not replayed)."""
        spec = record.effective_spec()
        stored = await asyncio.to_thread(stored_status, spec)
        if stored is None or not stored.done:
            return None
        log = await asyncio.to_thread(stored_log, spec) if offsets.log is not None else None
        if log is not None and offsets.log is not None and len(log) > offsets.log:
            on_event(LogChunk(offsets.log, log[offsets.log:]))
        on_event(StatusChanged(stored))
        self.emit(Notice("the machine has powered itself off; the end of the run comes from its bucket"))
        return stored

    def _remember_outcome(self, run_id: str, status: Status) -> None:
        record = self.journal.load(run_id)
        if record.state == RunState.STARTED and status.done and not restarts.restartable(record, status):
            record.state, record.outcome, record.exit_code, record.reason = "finished", status.outcome, status.exit_code, status.reason
            self.journal.save(record)

    @for_run
    async def follow_logs(self, run_id: str, offset: int = 0) -> Status:
        record = self._live(run_id)
        return await self._follow(record, Offsets(log=offset))

    @for_run
    async def follow_run(self, run_id: str, offsets: Offsets) -> Status:
        """Follow any of the log, the metrics and the telemetry (MetricPoint, TelemetrySample
        events), each from its own offset, until the run ends."""
        record = self._live(run_id)
        return await self._follow(record, offsets)


def _phase_detail(status: Status, phase: str) -> str:
    if phase == "installing" and status.venv_reused is None and status.phase == "installing":
        return "requirements into a cached venv (pip output in logs/install.log)"
    if phase == "training":
        return "reused the cached venv" if status.venv_reused else ""
    if phase == "installing" and status.pull_progress:
        return f"(dataset: {status.pull_progress[1]} files pulled)"
    if phase == "finished" and status.done:
        return f"{status.outcome}" + (f": {status.reason}" if status.reason else "")
    return ""
