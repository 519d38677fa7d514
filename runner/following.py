"""Following a run, for Lifecycle: its log, metrics, telemetry and status from byte offsets,
reconnecting when the connection drops, and reading the end from the bucket once a cloud machine
has powered itself off. A multi-node run is followed on rank 0 while the other nodes are watched:
one that fails stops the rest, and the run's outcome is the worst of all nodes'."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from contextlib import AsyncExitStack

import asyncssh

from runner import nodes, restarts, ssh
from runner.buckets import stored_log, stored_object, stored_status
from runner.errors import AuthFailed, HostKeyMismatch, RemoteFailed, TrainrigError, Unreachable
from runner.events import EventSink, LogChunk, Notice, PhaseChanged, Progress, StatusChanged
from runner.follow import Offsets, follow
from runner.journal import RunRecord
from runner.lifecycle_base import LifecycleBase, for_run
from runner.machine import Machine
from runner.machine_tools import MachineTools
from runner.remote.status import Status
from runner.states import MachinePhase, Outcome, RunState
from runner.tpu_release import release_if_done

RECONNECT_FOR_S = 120.0
NODE_POLL_S = 1.0
NODE_RECONNECT_S = 3.0  # an unreadable node is reached again this often while rank 0 is followed


class Following(LifecycleBase):
    async def _follow(
        self, record: RunRecord, offsets: Offsets, conn: asyncssh.SSHClientConnection | None = None,
        proc: asyncssh.SSHClientProcess | None = None, machine: Machine | None = None,
    ) -> Status:
        """Stream the followed files from `offsets` until the run ends; reconnects when the
        connection drops, and carries a run whose machine was taken away onto a new one."""
        while True:
            if len(record.all_nodes()) > 1:
                watch = asyncio.ensure_future(self._watch_nodes(record))
                try:
                    status, offsets = await self._follow_attempt(record, offsets, conn, proc, machine)
                finally:
                    watch.cancel()
                status = await self._nodes_outcome(record, status)
            else:
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
                if event.status.phase == MachinePhase.PULLING_DATASET and event.status.pull_progress:
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

    async def _node_tools(self, record: RunRecord, stack: AsyncExitStack) -> list[MachineTools | None]:
        """A connection to each of nodes 1.. (None: not reachable now)."""
        out: list[MachineTools | None] = []
        for m in record.all_nodes()[1:]:
            try:
                out.append(MachineTools(await stack.enter_async_context(ssh.connect(m)), m))
            except TrainrigError:
                out.append(None)
        return out

    async def _node_status(self, record: RunRecord, k: int, on_node: MachineTools | None) -> Status | None:
        """Node k's status from the machine, or else (a cloud machine powers off after its last
        sync) as it last pushed it to the run's bucket; None: neither can be read."""
        try:
            if on_node is not None:
                return await on_node.status(record.run_id)
        except (TrainrigError, OSError):
            pass
        spec = record.effective_spec()
        if record.stack is None or not spec.output_store:
            return None
        raw = await asyncio.to_thread(stored_object, spec, f"node-{k}/status.json")
        return Status.from_dict(json.loads(raw)) if raw else None

    async def _node_statuses(self, record: RunRecord, on_nodes: list[MachineTools | None], until_done: bool) -> list[Status | None]:
        """Nodes 1..: each one's status (None: unreadable); `until_done`: waits for each to end, but
        for one unreadable RECONNECT_FOR_S on end."""
        out: list[Status | None] = []
        for k, on_node in enumerate(on_nodes, 1):
            st = await self._node_status(record, k, on_node)
            last_read = time.monotonic()
            while until_done and not (st is not None and st.done) and time.monotonic() - last_read < RECONNECT_FOR_S:
                await asyncio.sleep(NODE_POLL_S)
                now = await self._node_status(record, k, on_node)
                if now is not None:
                    st, last_read = now, time.monotonic()
            if until_done and (st is None or not st.done):
                self.emit(Notice(f"node {k}'s end cannot be read: it counts as lost"))
                st = None
            out.append(st)
        return out

    async def _watch_nodes(self, record: RunRecord) -> None:
        """While rank 0 is followed: a node that ended other than succeeded gets the rest stopped
        from here too, in case its message was lost, or never sent (a machine gone with its
        supervisor: `lost`, read once the node is reached again; the run restarts on every node
        if it may). A node that cannot be read is reached again every NODE_RECONNECT_S."""
        async with AsyncExitStack() as stack:
            await self._machine(record)  # the local servers may need a restart; the record gets their ports
            on_nodes = await self._node_tools(record, stack)
            again: dict[int, AsyncExitStack] = {}  # node -> its newest connection made again (one each)
            stack.push_async_callback(lambda: asyncio.gather(*(s.aclose() for s in again.values()), return_exceptions=True))
            reached = time.monotonic()
            while True:
                await asyncio.sleep(NODE_POLL_S)
                statuses = await self._node_statuses(record, on_nodes, False)
                if None in statuses and time.monotonic() - reached > NODE_RECONNECT_S:
                    reached = time.monotonic()
                    on_nodes = await self._reconnect_nodes(record, again, on_nodes, statuses)
                    statuses = await self._node_statuses(record, on_nodes, False)
                bad = [k for k, st in enumerate(statuses, 1) if st is not None and st.done and st.outcome != Outcome.SUCCEEDED]
                if bad:
                    self.emit(Notice(f"node {bad[0]} ended without success: stopping the other nodes"))
                    lead = record.all_nodes()[0]
                    try:
                        rank0 = MachineTools(await stack.enter_async_context(ssh.connect(lead)), lead)
                    except TrainrigError:
                        rank0 = None
                    for k, on_node in enumerate([rank0, *on_nodes]):
                        if on_node is not None and k not in bad:
                            try:
                                await on_node.stop(record.run_id, 10.0)
                            except (TrainrigError, OSError):
                                pass
                    return

    async def _reconnect_nodes(self, record: RunRecord, again: dict[int, AsyncExitStack], on_nodes: list[MachineTools | None],
                               statuses: list[Status | None]) -> list[MachineTools | None]:
        """A new connection to each of nodes 1.. that could not be read (a local node's server, killed
        with its machine, is started again over the same sandbox: its status then says `lost`); the
        connection it replaces, if made here before, is closed (none piles up while a node stays away)."""
        try:
            await self._machine(record)
        except TrainrigError:
            return on_nodes
        out = list(on_nodes)
        for k, st in enumerate(statuses, 1):
            if st is None:
                m = record.all_nodes()[k]
                old = again.pop(k, None)
                if old is not None:
                    await old.aclose()
                fresh = AsyncExitStack()
                try:
                    out[k - 1] = MachineTools(await fresh.enter_async_context(ssh.connect(m)), m)
                    again[k] = fresh
                except TrainrigError:
                    out[k - 1] = None  # its old connection is closed
                    await fresh.aclose()
        return out

    async def _nodes_outcome(self, record: RunRecord, lead: Status) -> Status:
        """Rank 0's status with the worst outcome of every node's (waiting for each to end). Rank 0
        ended other than succeeded: the others are stopped first, for a rank 0 whose machine went
        with its supervisor told nobody (they would train on alone)."""
        try:
            await self._machine(record)  # a node's local server may have gone with its machine
        except TrainrigError:
            pass
        async with AsyncExitStack() as stack:
            on_nodes = await self._node_tools(record, stack)
            if lead.done and lead.outcome != Outcome.SUCCEEDED:
                await asyncio.gather(*(t.stop(record.run_id, 10.0) for t in on_nodes if t is not None), return_exceptions=True)
            statuses = [lead, *await self._node_statuses(record, on_nodes, True)]
        # A node whose end cannot be read (its machine gone, its bucket's status stale) counts as lost:
        # the restartable loss it most likely is, never left out of the run's outcome.
        known = [(k, st if st is not None else dataclasses.replace(
            lead, outcome=Outcome.LOST, exit_code=None, reason="its status could not be read: its machine may be gone"))
            for k, st in enumerate(statuses)]
        k, worst = known[nodes.worst([st.outcome or Outcome.LOST for _, st in known])]
        synced = [st.final_sync_ok for st in statuses if st is not None]
        final_sync_ok = lead.final_sync_ok if record.spec.outputs_from == "rank0" or False not in synced else False
        if k == 0:
            return dataclasses.replace(lead, final_sync_ok=final_sync_ok)
        return dataclasses.replace(lead, outcome=worst.outcome, exit_code=worst.exit_code,
                                   reason=f"node {k}: {worst.reason}", final_sync_ok=final_sync_ok)

    def _remember_outcome(self, run_id: str, status: Status) -> None:
        record = self.journal.load(run_id)
        if record.state == RunState.STARTED and status.done and not restarts.restartable(record, status):
            record.state, record.outcome, record.exit_code, record.reason = RunState.FINISHED, status.outcome, status.exit_code, status.reason
            self.journal.save(record)

    @for_run
    async def follow_logs(self, run_id: str, offset: int = 0, node: int | str = 0) -> Status:
        """The log from `offset` until the run ends; `node`: a multi-node run's rank K (from its
        start), or nodes.ALL (every node's, interleaved, each line prefixed `[K] `)."""
        record = self._live(run_id)
        if node != 0:
            return await self._follow_node_logs(record, node)  # type: ignore[attr-defined]  (Reading's)
        return await self._follow(record, Offsets(log=offset))

    @for_run
    async def follow_run(self, run_id: str, offsets: Offsets) -> Status:
        """Follow any of the log, the metrics and the telemetry (MetricPoint, TelemetrySample
        events), each from its own offset, until the run ends."""
        record = self._live(run_id)
        return await self._follow(record, offsets)


def _phase_detail(status: Status, phase: str) -> str:
    if phase == MachinePhase.INSTALLING and status.venv_reused is None and status.phase == MachinePhase.INSTALLING:
        return "requirements into a cached venv (pip output in logs/install.log)"
    if phase == MachinePhase.TRAINING:
        return "reused the cached venv" if status.venv_reused else ""
    if phase == MachinePhase.INSTALLING and status.pull_progress:
        return f"(dataset: {status.pull_progress[1]} files pulled)"
    if phase == MachinePhase.FINISHED and status.done:
        return f"{status.outcome}" + (f": {status.reason}" if status.reason else "")
    return ""
