"""Reading a run, for Lifecycle: its status, log, metrics and TensorBoard from the machine (or, once
a cloud machine is off, from its bucket), the runs this computer knows, and stopping a training."""

from __future__ import annotations

import asyncio
import shlex
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from typing import Callable

import asyncssh

from runner import nodes, ssh
from runner.buckets import copy_stored_object, stored_object, stored_status
from runner.errors import BadInput, NoMachine, RemoteFailed, TrainrigError, Unreachable
from runner.events import LogChunk, MetricPoint, Notice, StatusChanged
from runner.journal import RunRecord
from runner.lifecycle_base import LifecycleBase, for_run
from runner.machine import Machine
from runner.machine_tools import MachineTools
from runner.metrics import parse_lines
from runner.remote.status import Status
from runner.remote.telemetry import Sample
from runner.states import HAS_MACHINE, Outcome, RunState
from runner.tensorboard import Tunnel, serve_tensorboard
from runner.tpu_release import release_if_done

STOP_WAIT_S = 30.0
CLOUD_STOP_WAIT_S = 600.0


@dataclass(frozen=True)
class NodeRow:
    """One node of a multi-node run as `status` shows it (its `--json` "nodes")."""

    rank: int
    address: str
    readable: bool  # False: its status could not be read now (the fields below are then empty)
    phase: str | None
    outcome: str | None
    exit_code: int | None
    reason: str


@dataclass(frozen=True)
class StatusReport:
    record: RunRecord
    status: Status | None
    error: str = ""
    telemetry: Sample | None = None  # the machine's last telemetry sample (GPU, CPU, memory, disk)
    nodes: tuple[Status | None, ...] = ()  # a multi-node run: every node's status, rank order (None: unreadable)

    def node_rows(self) -> list[NodeRow]:
        """Every node of a multi-node run, rank order (none for a one-node run, or when rank 0 is unreachable)."""
        machines = self.record.all_nodes()
        return [NodeRow(k, machines[k].address if k < len(machines) else "", st is not None,
                        str(st.phase) if st is not None and st.phase else None,
                        str(st.outcome) if st is not None and st.outcome else None,
                        st.exit_code if st is not None else None, st.reason if st is not None else "")
                for k, st in enumerate(self.nodes)]

    def nodes_json(self) -> list[dict]:
        return [asdict(n) for n in self.node_rows()]


class Reading(LifecycleBase):
    @for_run
    async def read_metrics(self, run_id: str, node: int = 0) -> list[MetricPoint]:
        """The metric points the training has written so far (all attempts); `node`: a multi-node
        run's rank K."""
        record = self.journal.load(run_id)
        nodes.which_nodes(max(len(record.all_nodes()), 1), node, run_id)  # one rank, and one that exists
        try:
            record = self._live(run_id)
            await self._machine(record)  # the local servers may need a restart; the record gets their ports
            machine = record.all_nodes()[node]
            async with ssh.connect(machine) as conn:
                done = await ssh.run(conn, ["cat", f"{machine.run_dir(run_id)}/logs/metrics.jsonl"])
            data = (done.stdout or b"") if done.exit_status == 0 else b""
        except TrainrigError:
            if record.stack is None:
                raise
            # A powered-off cloud machine: the metrics as last synced to its bucket.
            where = f"node-{node}/logs/metrics.jsonl" if node else "logs/metrics.jsonl"
            data = await asyncio.to_thread(stored_object, record.effective_spec(), where) or b""
        return [p for _, _, p in parse_lines(data, 0) if p is not None]

    @for_run
    async def tensorboard(self, run_id: str, local_port: int, on_ready: Callable[[Tunnel], None]) -> None:
        """TensorBoard on the run's machine over its logs, forwarded to localhost:`local_port` (or
        the next free port) through the SSH connection; runs until cancelled (Ctrl-C)."""
        record = self._live(run_id)
        machine = await self._machine(record)
        async with ssh.connect(machine) as conn:
            await serve_tensorboard(conn, machine, run_id, local_port, on_ready)

    @for_run
    async def read_log(self, run_id: str) -> bytes:
        """The training log, whole (see `stream_log` for one that may be large)."""
        parts: list[bytes] = []
        await self.stream_log(run_id, parts.append)
        return b"".join(parts)

    @for_run
    async def stream_log(self, run_id: str, write: Callable[[bytes], object], node: int | str = 0) -> int:
        """Pass the training log to `write` piece by piece (memory stays bounded however long the
        log); returns its size. `node`: a multi-node run's rank K, or nodes.ALL (each node's in turn,
        every line prefixed `[K] `)."""
        if node != 0:
            return await self._stream_node_logs(run_id, write, node)
        record = self.journal.load(run_id)
        if record.stack is not None and record.effective_spec().output_store:
            # A cloud run's log is synced to its bucket: readable with the machine off, or gone.
            written = [0]

            def counted(data: bytes) -> None:
                written[0] += len(data)
                write(data)

            try:
                return await self._read_log_from_machine(record, counted)
            except TrainrigError as e:  # off, shutting down (logins refused), or its address reused
                if written[0]:
                    raise  # part of it is out already: the bucket's copy would repeat it
                self.emit(Notice(f"the machine cannot be reached ({e}); this is the log as last synced to the bucket"))
                size = await asyncio.to_thread(copy_stored_object, record.effective_spec(), "logs/train.log", write)
                if size is None:
                    raise
                return size
        return await self._read_log_from_machine(self._live(run_id), write)

    async def _stream_node_logs(self, run_id: str, write: Callable[[bytes], object], node: int | str) -> int:
        record = self.journal.load(run_id)
        ranks = nodes.which_nodes(len(record.all_nodes()), node, run_id)
        in_bucket = record.stack is not None and bool(record.effective_spec().output_store)
        try:
            record = self._live(run_id)
            await self._machine(record)  # the local servers may need a restart; the record gets their ports
            machines: list[Machine | None] = list(record.all_nodes())
        except TrainrigError:
            if not in_bucket:
                raise
            machines = [None] * len(record.all_nodes())  # powered off: every node's log as its bucket has it
        size = 0
        for k in ranks:
            pre, sent = nodes.Prefixer(k) if node == nodes.ALL else None, [0]

            def out(data: bytes, pre: nodes.Prefixer | None = pre, sent: list[int] = sent) -> None:
                sent[0] += len(data)
                write(pre.feed(data) if pre else data)

            try:
                if machines[k] is None:
                    raise Unreachable(f"node {k} of run {run_id} is off")
                size += await self._read_log_from_machine(record, out, machines[k])
            except TrainrigError:
                if not in_bucket or sent[0]:
                    raise  # nowhere else to read it, or part of it is out already (the bucket's would repeat it)
                # A cloud node's log is synced to its bucket (node K's under node-K/): readable with it off.
                key = f"node-{k}/logs/train.log" if k else "logs/train.log"
                got = await asyncio.to_thread(copy_stored_object, record.effective_spec(), key, out)
                if got is None:
                    raise
                size += got
            if pre:
                write(pre.flush())  # a last line with no newline
        return size

    async def _read_log_from_machine(self, record: RunRecord, write: Callable[[bytes], object],
                                     machine: Machine | None = None) -> int:
        run_id = record.run_id
        if record.state not in HAS_MACHINE or record.machine is None:
            raise NoMachine(run_id, record.state)
        machine = machine or await self._machine(record)
        size = 0
        async with ssh.connect(machine) as conn:
            try:
                proc = await conn.create_process(shlex.join(["cat", f"{machine.run_dir(run_id)}/logs/train.log"]),
                                                 encoding=None, stderr=asyncssh.DEVNULL)
                # A chunk at a time: SSH's window holds the machine back while `write` (a pipe) is slow.
                while data := await proc.stdout.read(1 << 20):
                    write(data)
                    size += len(data)
                await proc.wait()
            except asyncssh.Error as e:
                raise RemoteFailed(f"the connection to the machine broke while reading the log: {e.reason}") from e
        if proc.exit_status != 0:
            from runner.sweep.slots import refuse_slot

            refuse_slot(record, self.journal)  # a sweep's machine has no log of its own: its trials' are
            raise BadInput(f"run {run_id} has no log yet: `trainrig start {run_id}` starts its training.")
        return size

    async def _follow_node_logs(self, record: RunRecord, node: int | str) -> Status:
        """`logs --node K -f` (or all, interleaved as lines come, each prefixed `[K] `) until those
        nodes end; returns the worst of their statuses."""
        from runner.follow import Offsets, follow

        await self._machine(record)
        ranks = nodes.which_nodes(len(record.all_nodes()), node, record.run_id)

        async def one(k: int) -> Status:
            m, pre = record.all_nodes()[k], nodes.Prefixer(k) if node == nodes.ALL else None

            end = [0]  # where node k's log shown so far ends

            def on_event(event):  # type: ignore[no-untyped-def]
                if isinstance(event, LogChunk):
                    end[0] = event.offset + len(event.data)
                    self.emit(LogChunk(event.offset, pre.feed(event.data)) if pre else event)
                elif not isinstance(event, StatusChanged) or k == ranks[0]:
                    self.emit(event)

            async with ssh.connect(m) as conn:
                ended = (await follow(conn, m, record.run_id, Offsets(log=0), on_event))[0]
            if pre:
                rest = pre.flush()  # a last line with no newline
                if rest:
                    self.emit(LogChunk(end[0] - len(rest), rest))
            return ended

        statuses = await asyncio.gather(*(one(k) for k in ranks))
        return statuses[nodes.worst([st.outcome or Outcome.LOST for st in statuses])]

    @for_run
    async def status(self, run_id: str) -> StatusReport:
        record = self.journal.load(run_id)
        if record.state not in HAS_MACHINE or record.machine is None:
            return StatusReport(record, None)
        try:
            machine = await self._machine(record)
            async with ssh.connect(machine) as conn:
                on_machine = MachineTools(conn, machine)
                status = await on_machine.status(run_id)
                last = await on_machine.telemetry(run_id)
        except TrainrigError as e:
            # A cloud machine powers itself off after the training: its bucket still has the last status.
            stored = await asyncio.to_thread(stored_status, record.effective_spec()) if record.stack else None
            if stored is not None and stored.done:
                self._remember_outcome(run_id, stored)
                await release_if_done(self.journal.load(run_id), stored, self.journal, self.emit)  # nobody followed it
                return StatusReport(self.journal.load(run_id), stored, f"{e} (the status shown is the last one synced to the bucket)")
            hint = ""
            if record.spec.cloud is not None and isinstance(e, Unreachable):
                hint = (f" (SSH is let in from {record.spec.cloud.ssh_from} only: if this computer's address changed, "
                        f"set trainrig:sshFrom in stacks/Pulumi.{run_id}.yaml and `pulumi up -s {run_id}`)")
            return StatusReport(record, stored, str(e) + hint)
        every: tuple[Status | None, ...] = ()
        settled = status is not None and status.done
        if status is not None and len(record.all_nodes()) > 1:
            async with AsyncExitStack() as stack:
                others = await self._node_statuses(record, await self._node_tools(record, stack), False)  # type: ignore[attr-defined]
            every = (status, *others)
            # The run's outcome is the worst node's: never rank 0's alone while another node goes on.
            settled = all(st is not None and st.done for st in every)
            if settled:
                status = await self._nodes_outcome(record, status)  # type: ignore[attr-defined]  (the worst node's)
        if status is not None and settled:
            self._remember_outcome(run_id, status)
        return StatusReport(self.journal.load(run_id), status, telemetry=last, nodes=every)

    def ls(self) -> list[RunRecord]:
        return self.journal.all()

    def unknown_stacks(self) -> list[str]:
        """Stacks in the Pulumi backend with no live run in this journal: resources nobody here watches."""
        import importlib.util

        from infra.engine import Engine, check_installed
        from infra.project import project_dir

        check_installed("gcp" if importlib.util.find_spec("pulumi_gcp") else "aws")  # the SDK and the CLI, or one sentence
        live = {r.run_id for r in self.journal.all() if r.state != RunState.DESTROYED}
        return [s for s in Engine(project_dir(self.journal.root.parent), self.journal.root.parent).stacks() if s not in live]

    @for_run
    async def stop(self, run_id: str) -> Status | None:
        record = self._live(run_id)
        machine = await self._machine(record)
        # Every other node at once, beside rank 0's: each stopped on request, none told by a peer; each
        # one's stop is waited for whatever happens to rank 0's (none is left training unseen).
        others = asyncio.gather(*(self._stop_node(m, run_id) for m in record.all_nodes()[1:]), return_exceptions=True)
        try:
            async with ssh.connect(machine) as conn:
                # A cloud machine's final sync to its bucket may take minutes; its supervisor then powers it off.
                on_machine = MachineTools(conn, machine)
                await on_machine.stop(run_id, _stop_wait(machine))
                status = await on_machine.status(run_id)
        finally:
            failed = [e for e in await others if isinstance(e, BaseException)]
        if failed:
            raise failed[0]
        if status is not None:
            self._remember_outcome(run_id, status)
        return status

    async def _stop_node(self, machine: Machine, run_id: str) -> None:
        async with ssh.connect(machine) as conn:
            await MachineTools(conn, machine).stop(run_id, _stop_wait(machine))


def _stop_wait(machine: Machine) -> float:
    """A cloud machine's final sync to its bucket may take minutes; its supervisor then powers it off."""
    return CLOUD_STOP_WAIT_S if machine.shutdown_after else STOP_WAIT_S
