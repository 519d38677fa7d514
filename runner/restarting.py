"""Restarts after a preemption, for Lifecycle: a run whose machine was taken away (outcome
`preempted`, or `lost` with its machine) goes on on a new one, from what its output store holds
(runner/restarts.py says which runs, with what budget). A mixin: it uses the lifecycle's journal,
events, phases, machine and launch."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import asyncssh

from runner import restarts, ssh
from runner.buckets import output_location, stored_status
from runner.errors import BadInput, RemoteFailed, TrainrigError
from runner.events import EventSink, Notice
from runner.follow import Offsets
from runner.journal import Journal, RunRecord, utc_now
from runner.remote.status import Status
from runner.states import RunState
from runner.targets import get_target

CLOUD_STATE_EVERY_S = 30.0  # at most one `pulumi refresh` this often for a cloud machine that does not answer


class Restarting:
    # Lifecycle's (runner/lifecycle.py), with its _phase, _machine, _upload_and_launch and _launch_nodes.
    journal: Journal
    emit: EventSink
    _state_asked: float

    async def _restart(self, status: Status, offsets: Offsets) -> tuple[RunRecord, Offsets]:
        """A new machine for a run whose machine was taken away (`status`, its last): the old one is
        destroyed (a cloud run's stack stays, only its machine is replaced), a new one provisioned, the
        code and dataset sent again, and the training launched to resume from the store's outputs and
        logs. A restart made since by another follower (`logs -f` beside `run`) is followed, never
        made again. Returns the record and where following goes on (never past the restored log's end)."""
        rid = status.run_id
        while True:
            try:
                lock = self.journal.lock(rid, "restart")
                lock.__enter__()
                break
            except BadInput:  # another command holds the run (another follower restarting it)
                await asyncio.sleep(1)
        try:
            now = self.journal.load(rid)
            if restarts.replaced(now, status):
                if now.restarts[-1].failed:
                    raise RemoteFailed(f"run {rid}'s machine was {status.outcome} and no new one could be brought up "
                                       f"({now.restarts[-1].failed}): `trainrig download {rid}`, then `trainrig down {rid}`.")
                return now, _not_past(offsets, Offsets(now.log_offset, None, None))
            return await self._new_machine(now, status, offsets)
        finally:
            lock.__exit__(None, None, None)

    async def _new_machine(self, record: RunRecord, status: Status, offsets: Offsets) -> tuple[RunRecord, Offsets]:
        rid = record.run_id
        try:
            lost = restarts.lost_attempt(record, status)
            record.restarts.append(lost)
            # In the same save: from now on every follower sees this machine as replaced (restarts.replaced).
            record.attempt_started_at = utc_now()
            self.journal.save(record)
            self.emit(Notice(f"run {rid}: its machine was {status.outcome} ({status.reason}); restart {lost.number} of "
                             f"{record.max_restarts}: a new machine resumes from what {output_location(record.effective_spec())} holds"))
            target = get_target(record.spec.target)
            self._phase(record, "restarting", f"restart {lost.number}")
            # A cloud run's stack stays (its bucket holds the outputs): only its machine is replaced.
            # The local target's sandbox is the machine: destroyed, then made afresh.
            reprovision = getattr(target, "reprovision", None)
            if reprovision is None:
                await target.destroy(record, self.journal, self.emit)
                record.machine = None
                self.journal.save(record)  # another follower's reconnect must not revive the old sandbox
            self._phase(record, "provisioning", f"target {record.spec.target} (restart {lost.number})")
            record.machine = await (reprovision or target.provision)(record, self.journal, self.emit)
            record.state = RunState.UP
            self.journal.save(record)
            machine = await self._machine(record)
            machines = record.all_nodes()
            async with AsyncExitStack() as stack:  # every node of a multi-node run, each restoring its store
                conns = [await stack.enter_async_context(ssh.connect(m)) for m in machines]
                if len(machines) > 1:
                    started, _ = await self._launch_nodes(record, conns, machines, follow_log=False, restore=True)
                else:
                    started, _ = await self._upload_and_launch(conns[0], record, machine, follow_log=False, restore=True)
        except (TrainrigError, OSError, asyncssh.Error) as e:
            # The run ends here as its lost attempt did; what it synced is in its store.
            why = str(e) if isinstance(e, TrainrigError) else (getattr(e, "reason", "") or str(e) or type(e).__name__)
            record = self.journal.load(rid)
            record.state, record.outcome, record.exit_code = RunState.FINISHED, status.outcome, status.exit_code
            record.reason = f"{status.reason}; no new machine could be brought up: {why}"
            if record.restarts:
                record.restarts[-1].failed = why
            self.journal.save(record)
            raise RemoteFailed(f"run {rid}'s machine was {status.outcome} and no new one could be brought up ({why}): "
                               f"its outputs so far are in {output_location(record.effective_spec())}: "
                               f"`trainrig download {rid}`, then `trainrig down {rid}`.") from e
        return record, _not_past(offsets, started)

    async def _cloud_machine_gone(self, record: RunRecord) -> Status | None:
        """A cloud machine that does not answer and that its cloud reports stopped or terminated (a
        preemption whose notice nobody saw): the last status in its bucket, settled as lost. Asked
        only of a run with restarts left, at most every CLOUD_STATE_EVERY_S (a `pulumi refresh`)."""
        now = self.journal.load(record.run_id)
        if len(now.restarts) >= now.max_restarts or time.monotonic() - self._state_asked < CLOUD_STATE_EVERY_S:
            return None
        self._state_asked = time.monotonic()
        from runner.targets.cloud import _engine
        from runner.targets.cloud_restart import GONE_STATES, machine_state

        try:
            # Never beside a restart's own `pulumi up` (another follower's): the stack takes one update at a time.
            with self.journal.lock(record.run_id, "refresh"):
                state = await asyncio.to_thread(machine_state, _engine(self.journal, self.emit), record.run_id)
        except BadInput:
            return None
        if state not in GONE_STATES:
            return None
        status = await asyncio.to_thread(stored_status, record.effective_spec()) or Status(run_id=record.run_id)
        if not status.done:
            status.settle_dead_supervisor()
            status.reason = f"the cloud reports the machine {state} and it does not answer"
        return status


def _not_past(shown: Offsets, started: Offsets) -> Offsets:
    """Following goes on from what was shown, but never past where the restored files end: lines
    the lost machine never synced are gone, and the new attempt's lines follow the restored ones."""
    def low(a: int | None, b: int | None) -> int | None:
        return None if a is None else min(a, b if b is not None else a)

    return Offsets(low(shown.log, started.log), low(shown.metrics, started.metrics), low(shown.telemetry, started.telemetry))
