"""A run's lifecycle: up (provision), start (upload, launch, follow), logs, status, stop, download,
down (destroy), and `run`, which does them all. Every step is a plain function the command line and
the UI call alike; progress is reported as events, failures as the project's own errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from infra.spec import RunSpec
from runner import down_checks, restarts, ssh
from runner.buckets import check_run_buckets
from runner.downloading import Downloading, folder_name, with_outputs  # noqa: F401 (the runner's API)
from runner.errors import BadInput, ConnectionLost, NoMachine, OutputsKept, TrainrigError, Unreachable
from runner.events import Notice, ignore
from runner.following import Following
from runner.journal import HOLDS_RESOURCES, RunRecord
from runner.launching import Launching
from runner.machine import Machine
from runner.lifecycle_base import LifecycleBase, for_run, why as _why
from runner.reading import Reading, StatusReport  # noqa: F401 (the runner's API)
from runner.remote.status import Status
from runner.restarting import Restarting
from runner.ssh_config import sync_quietly as sync_ssh_config
from runner.states import HAS_MACHINE, RunState
from runner.targets import get_target


@dataclass(frozen=True)
class RunResult:
    status: Status
    folder: Path | None


class Lifecycle(Launching, Following, Reading, Downloading, Restarting, LifecycleBase):
    """Every step of a run, one concern per mixin (launching, following, reading, downloading,
    restarting); here: up, down and `run`, which does them all."""

    @for_run
    async def up(self, spec: RunSpec, max_restarts: int | None = None, sweep: str = "") -> RunRecord:
        """`sweep`: a sweep's slot, marked from its first record (a sweep killed mid-`up` finds it)."""
        rid = spec.run_id
        budget = restarts.max_restarts(spec, max_restarts)  # bad input: before anything is checked or made
        if spec.cloud is not None:
            from runner.cloud_checks import prepare

            spec = await asyncio.to_thread(prepare, spec, self.emit)  # Pulumi, credentials, the SSH range
        await asyncio.to_thread(check_run_buckets, spec)  # before anything exists, even a lock
        for note in spec.notes:  # e.g. which entry point was taken: said once the input is known to be good
            self.emit(Notice(note))
        with self.journal.lock(rid, "up"):
            if self.journal.exists(rid):
                old = self.journal.load(rid)
                if old.state in (RunState.PROVISIONING, RunState.DESTROYING):
                    raise NoMachine(rid, old.state)
                if old.state in HOLDS_RESOURCES:
                    raise BadInput(
                        f"run {rid} already exists ({old.state}): `trainrig start {rid}` trains on it again, "
                        f"`trainrig down {rid}` destroys it first."
                    )
            record = RunRecord(spec=spec, max_restarts=budget, sweep=sweep)
            target = get_target(spec.target)
            self._phase(record, "provisioning", f"target {spec.target}")
            try:
                record.machine = await target.provision(record, self.journal, self.emit)
            except BaseException as e:
                # Nothing of a failed provisioning may stay behind; if the clean-up itself fails,
                # the record stays so that `trainrig ls` shows what may be left.
                await target.destroy(record, self.journal, ignore)
                self.journal.remove(rid)
                if isinstance(e, Unreachable):
                    raise BadInput(str(e)) from e
                raise
            record.state = RunState.UP
            self.journal.save(record)
        self._sync_ssh_config()  # `ssh trainrig-<run>` reaches it from now on
        return record

    @for_run
    async def down(self, run_id: str, discard_outputs: bool = False, stop: bool = False) -> None:
        """Destroy the run; refuses (down_checks' typed refusals) a training still going unless
        `stop`, and outputs never downloaded unless `discard_outputs`."""
        record = self.journal.load(run_id)
        if record.state == RunState.DESTROYED:
            self.emit(Notice(f"run {run_id} was already destroyed"))
            return
        if record.sweep:  # its sweep, running in another process, would go on lending this machine
            from runner.sweep.study import refuse_while_running

            refuse_while_running(run_id, record.sweep, bool(record.borrowed_from))
        for other in self.journal.all():  # sweep trials on this machine first (a killed sweep's): same rules
            if other.borrowed_from == run_id and other.state != RunState.DESTROYED:
                await self.down(other.run_id, discard_outputs=discard_outputs, stop=stop)
        await down_checks.check(record, lambda: self._machine(record), discard_outputs, stop,
                                lambda: self.stop(run_id))
        record = self.journal.load(run_id)  # a stop above recorded the outcome
        with self.journal.lock(run_id, "down"):
            was = record.state
            record.state = RunState.DESTROYING
            try:
                self._phase(record, "destroying", f"target {record.spec.target}")
            except OSError as e:
                # This computer's disk is full (maybe with this very run's sandbox): destroying is
                # what frees it, so destroy first and record after; till then the record says `was`,
                # and `down` again is harmless.
                self.emit(Notice(f"could not record that run {run_id} is being destroyed ({_why(e)}): destroying it anyway"))
            if record.borrowed_from:  # a sweep trial: its folder goes, the slot's machine stays for the next
                await self._give_back(record)
            else:
                target = get_target(record.spec.target)
                await target.destroy(record, self.journal, self.emit)
            record.state = RunState.DESTROYED
            try:
                self._phase(record, "destroyed")
            except OSError as e:
                raise TrainrigError(
                    f"run {run_id}'s machine is destroyed, but its record could not be saved ({_why(e)}) and still says "
                    f"{was}: free space in {self.journal.dir(run_id)}, then `trainrig down {run_id}` records it."
                ) from e
            self.journal.forget_secrets(run_id)  # only once recorded: a `down` again may need them
        self._sync_ssh_config()  # its `Host trainrig-<run>` entry goes with it

    async def _machine(self, record: RunRecord) -> Machine:
        if record.borrowed_from:  # a sweep trial: the slot run's machine, reattached through the slot's record
            slot = self.journal.load(record.borrowed_from)
            if slot.state not in HAS_MACHINE or slot.machine is None:
                raise NoMachine(record.run_id, slot.state)
            # A cloud slot must not power itself off after one trial: the next one trains on it.
            return dataclasses.replace(await super()._machine(slot), shutdown_after=False)
        return await super()._machine(record)

    async def _give_back(self, record: RunRecord) -> None:
        """`down` of a trial on a borrowed machine: remove its run folder there (down_checks stopped its
        training); the machine is its slot's, destroyed by the slot's `down`."""
        slot = self.journal.load(record.borrowed_from)
        if slot.state not in HAS_MACHINE or slot.machine is None:
            return  # the slot, and the folder with it, is gone already
        machine = await self._machine(record)
        async with ssh.connect(machine) as conn:
            await ssh.run(conn, ["rm", "-rf", "--", machine.run_dir(record.run_id)])

    def _sync_ssh_config(self) -> None:
        problem = sync_ssh_config(self.journal)
        if problem:
            self.emit(Notice(problem))

    @for_run
    async def run(self, spec: RunSpec, outputs_root: Path, max_restarts: int | None = None) -> RunResult:
        """up, start and follow, download, down. An interrupt (Ctrl-C) leaves the run going."""
        from runner.downloading import check_outputs_root

        check_outputs_root(outputs_root)  # before any machine: the outputs must be able to come home
        record = await self.up(spec, max_restarts)
        try:
            status = await self.start(record.run_id, follow_log=True)
        except TrainrigError as e:
            state = self.journal.load(record.run_id).state
            if state == RunState.FINISHED:  # a restart after a preemption failed: its error says what to do
                pass
            elif state == RunState.STARTED:
                # The training runs on; only following it failed. Never destroy it unasked.
                rid = record.run_id
                self.emit(Notice(f"the training goes on: `trainrig logs {rid} -f` follows it, "
                                 f"`{with_outputs(f'trainrig download {rid}', outputs_root)}` and `trainrig down {rid}` finish the run"))
            else:
                self.emit(Notice("the run failed before its training started: destroying what it created"))
                await self.down(record.run_id)
                if isinstance(e, ConnectionLost):  # its `trainrig start` needs the machine just destroyed
                    raise ConnectionLost(e.doing, e.why, with_outputs(f"trainrig run {record.run_id}", outputs_root)) from e
            raise
        assert status is not None
        rid = record.run_id
        if status.final_sync_ok is False:
            # The outputs are on the machine, not all in its store: destroying it would lose them.
            raise OutputsKept(self._kept(rid, outputs_root, f"its final sync on the machine did not finish ({status.sync_error})",
                                         self._machine_disk(record)))
        try:
            folder = await self.download(rid, outputs_root)
            missing = await self._not_downloaded(rid, folder)
        except OSError as e:  # this computer's disk (the outputs folder) is full
            raise OutputsKept(self._kept(rid, outputs_root, f"the download failed ({_why(e)})",
                                         f"on this computer's disk holding {outputs_root.resolve()}")) from e
        if missing:
            raise OutputsKept(self._kept(rid, outputs_root, f"{len(missing)} of the files in its store did not arrive "
                                         f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})",
                                         f"on this computer's disk holding {outputs_root.resolve()}"))
        await self.down(rid)
        return RunResult(status, folder)
