"""A run's lifecycle: up (provision), start (upload, launch, follow), logs, status, stop, download,
down (destroy), and `run`, which does them all. Every step is a plain function the command line and
the UI call alike; progress is reported as events, failures as the project's own errors.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import asyncssh

from infra.spec import RunSpec, is_bucket
from runner import down_checks, restarts, ssh, tools, transfer
from runner.buckets import (
    check_run_buckets,
    copy_stored_object,
    fetch_outputs,
    stored_log,
    stored_object,
    stored_status,
    output_location,
    tool_packages,
)
from runner.errors import (
    AlreadyTraining,
    AuthFailed,
    BadInput,
    ConnectionLost,
    HostKeyMismatch,
    NoMachine,
    OutputsKept,
    RemoteFailed,
    TrainrigError,
    Unreachable,
)
from runner.events import (
    EventSink,
    LogChunk,
    MetricPoint,
    Notice,
    PhaseChanged,
    Progress,
    StatusChanged,
    ignore,
)
from runner.follow import Offsets, follow
from runner.ignore import IgnoreRules
from runner.journal import HOLDS_RESOURCES, Journal, RunRecord
from runner.machine import Machine
from runner.manifest import write_manifest
from runner.metrics import parse_lines
from runner.remote.config import SupervisorConfig
from runner.restarting import CLOUD_STATE_EVERY_S, Restarting
from runner.remote.status import Status
from runner.remote.stores import open_store
from runner.remote.telemetry import Sample
from runner.targets import get_target
from runner.tensorboard import Tunnel, serve_tensorboard
from runner.units import human_size

RECONNECT_FOR_S = 120.0
STOP_WAIT_S = 30.0
CLOUD_STOP_WAIT_S = 600.0


@dataclass(frozen=True)
class RunResult:
    status: Status
    folder: Path | None


@dataclass(frozen=True)
class StatusReport:
    record: RunRecord
    status: Status | None
    error: str = ""
    telemetry: Sample | None = None  # the machine's last telemetry sample (GPU, CPU, memory, disk)


def folder_name(record: RunRecord, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when or time.time()))
    return f"{stamp}_{record.spec.code_name}_{record.spec.dataset_name}"


class Lifecycle(Restarting):
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

    # -- up -------------------------------------------------------------------------------------
    async def up(self, spec: RunSpec, max_restarts: int | None = None) -> RunRecord:
        rid = spec.run_id
        budget = restarts.max_restarts(spec, max_restarts)  # bad input: before anything is checked or made
        if spec.cloud is not None:
            from runner.cloud_checks import prepare

            spec = await asyncio.to_thread(prepare, spec, self.emit)  # Pulumi, credentials, the SSH range
        await asyncio.to_thread(check_run_buckets, spec)  # before anything exists, even a lock
        with self.journal.lock(rid, "up"):
            if self.journal.exists(rid):
                old = self.journal.load(rid)
                if old.state in ("provisioning", "destroying"):
                    raise NoMachine(rid, old.state)
                if old.state in HOLDS_RESOURCES:
                    raise BadInput(
                        f"run {rid} already exists ({old.state}): `trainrig start {rid}` trains on it again, "
                        f"`trainrig down {rid}` destroys it first."
                    )
            record = RunRecord(spec=spec, max_restarts=budget)
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
            record.state = "up"
            self.journal.save(record)
        return record

    # -- start ----------------------------------------------------------------------------------
    async def _upload_and_launch(
        self, conn: asyncssh.SSHClientConnection, record: RunRecord, machine: Machine, follow_log: bool,
        restore: bool = False,
    ) -> tuple[Offsets, asyncssh.SSHClientProcess | None]:
        """Upload code and dataset, start the supervisor; with `follow_log`, the returned process
        already streams the run (log, metrics and telemetry of this attempt: one round trip less
        before the first log line)."""
        spec, rid = record.effective_spec(), record.run_id
        run_dir = machine.run_dir(rid)
        uploads = [
            transfer.upload(conn, machine, spec.code_path, f"{run_dir}/code", f"{run_dir}/.code.index.json",
                            IgnoreRules(spec.code_path).skip, "code", self.emit)
        ]
        self._phase(record, "uploading code", spec.code_path)
        if spec.dataset and not is_bucket(spec.dataset):
            self._phase(record, "uploading dataset", spec.dataset)
            uploads.append(
                transfer.upload(conn, machine, spec.dataset, f"{run_dir}/dataset", f"{run_dir}/.dataset.index.json",
                                None, "dataset", self.emit)
            )
        results = await asyncio.gather(*uploads)
        for label, r in zip(("code", "dataset"), results):
            left_out = f"; {r.left_out_text()}" if r.left_out else ""  # links out of the folder, broken links...
            if r.files_sent or r.deleted:
                self.emit(Notice(f"{label}: sent {r.files_sent} of {r.files_total} files ({human_size(r.bytes_sent)})"
                                 + (f", removed {r.deleted}" if r.deleted else "") + left_out))
            else:
                self.emit(Notice(f"{label}: unchanged ({r.files_total} files), nothing sent{left_out}"))
        python = await self._tool_python(conn, record, machine)
        out = output_location(spec)
        watch, metadata_url = restarts.preemption_watch(spec)
        config = SupervisorConfig(
            run_id=rid, venv_cache=machine.venv_cache, module=spec.entry.module, command=list(spec.entry.command),
            env=[list(kv) for kv in spec.env], install_script=spec.install_script, max_runtime_s=spec.max_runtime_s,
            sync_interval_s=spec.sync_interval_s, shutdown_after=machine.shutdown_after,
            dataset_uri=spec.dataset if is_bucket(spec.dataset) else None, output_uri=str(out) if out else None,
            training_python=machine.python, preemption_watch=watch, metadata_url=metadata_url,
            restore_from_store=restore,
        )
        args = ["launch", run_dir] + (["follow"] if follow_log else [])
        # The tools were checked by the uploads above (same connection), so no retry is needed here.
        proc = await tools.open_process(conn, machine, args, python)
        proc.stdin.write(config.to_json().encode())
        proc.stdin.write_eof()
        line = await proc.stdout.readline()
        if not line:
            err = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
            raise RemoteFailed(f"could not start the training: {err[-1] if err else 'the connection closed'}")
        reply = json.loads(line)
        if reply.get("error") == "already_running":  # started by another client since our check
            proc.close()
            raise AlreadyTraining(rid)
        record.state, record.outcome, record.exit_code, record.reason = "started", None, None, ""
        record.log_offset = reply["log_offset"]
        offsets = Offsets(reply["log_offset"], reply["metrics_offset"], reply["telemetry_offset"])
        self._phase(record, "started", f"supervisor pid {reply['pid']}")
        if not follow_log:
            await proc.wait()
            return offsets, None
        return offsets, proc

    async def _tool_python(self, conn: asyncssh.SSHClientConnection, record: RunRecord, machine: Machine) -> str | None:
        """With buckets, the supervisor runs in the machine's tool venv (cloud clients, no credentials)."""
        packages = tool_packages(record.effective_spec())
        if not packages:
            return None
        self._phase(record, "preparing tools", ", ".join(packages))
        reply = json.loads(await tools.call(conn, machine, ["toolenv", machine.venv_cache, *packages]))
        if "error" in reply:
            tail = "; ".join(reply.get("tail", [])[-3:])
            raise RemoteFailed(f"could not install {', '.join(packages)} on the machine: {reply['error']} ({tail})")
        return reply["python"]

    def _warn_cloud_limit(self, record: RunRecord) -> None:
        """A GCP VM's cloud-side run-time limit counts from provisioning (max runtime + 6 h)."""
        if record.spec.target != "gcp" or record.stack is None or not record.phases:
            return
        from runner.cost import epoch

        hours_up = (time.time() - epoch(record.phases[0][1])) / 3600
        if hours_up > 5:
            self.emit(Notice(f"warning: this VM was provisioned {hours_up:.1f} h ago; its cloud-side run-time limit "
                             f"(max runtime + 6 h from provisioning) may stop it before the training ends: "
                             f"`trainrig down {record.run_id}` and `run` again to reset it"))

    async def _refuse_if_training(self, conn: asyncssh.SSHClientConnection, machine: Machine, run_id: str) -> None:
        """Before anything is uploaded: a training still going keeps its code and dataset untouched.
        (`cat` and `kill -0`, not the tools: no Python start-up on the way to the first log line.)"""
        done = await ssh.run(conn, ["cat", f"{machine.run_dir(run_id)}/status.json"])
        try:
            status = Status.from_dict(json.loads(done.stdout or b"")) if done.exit_status == 0 else None
        except (ValueError, TypeError, KeyError):
            status = None  # half written by a supervisor that died mid-save: not a running one
        if status is None or status.done or not status.supervisor_pid:
            return
        if (await ssh.run(conn, ["kill", "-0", str(status.supervisor_pid)])).exit_status == 0:
            raise AlreadyTraining(run_id)

    async def start(self, run_id: str, follow_log: bool = True) -> Status | None:
        record = self._live(run_id)
        self._warn_cloud_limit(record)
        machine = await self._machine(record)
        async with ssh.connect(machine) as conn:
            with self.journal.lock(run_id, "start"):
                await self._refuse_if_training(conn, machine, run_id)
                try:
                    offsets, proc = await self._upload_and_launch(conn, record, machine, follow_log)
                except (OSError, asyncssh.Error) as e:  # BrokenPipeError included: never a silent exit
                    raise ConnectionLost(f"{record.phases[-1][0] if record.phases else 'starting'} for run {run_id}",
                                         _why(e), f"trainrig start {run_id}") from e
            if proc is None:
                return None
            return await self._follow(record, offsets, conn, proc, machine)

    # -- follow / logs --------------------------------------------------------------------------
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
                return status
            record, offsets = await self._restart(status, offsets)
            conn = proc = machine = None

    async def _follow_attempt(
        self, record: RunRecord, offsets: Offsets, conn: asyncssh.SSHClientConnection | None,
        proc: asyncssh.SSHClientProcess | None, machine: Machine | None,
    ) -> tuple[Status, Offsets]:
        machine = machine or await self._machine(record)
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
        if record.state == "started" and status.done and not restarts.restartable(record, status):
            record.state, record.outcome, record.exit_code, record.reason = "finished", status.outcome, status.exit_code, status.reason
            self.journal.save(record)

    async def follow_logs(self, run_id: str, offset: int = 0) -> Status:
        record = self._live(run_id)
        return await self._follow(record, Offsets(log=offset))

    async def follow_run(self, run_id: str, offsets: Offsets) -> Status:
        """Follow any of the log, the metrics and the telemetry (MetricPoint, TelemetrySample
        events), each from its own offset, until the run ends."""
        record = self._live(run_id)
        return await self._follow(record, offsets)

    async def read_metrics(self, run_id: str) -> list[MetricPoint]:
        """The metric points the training has written so far (all attempts)."""
        record = self.journal.load(run_id)
        try:
            record = self._live(run_id)
            machine = await self._machine(record)
            async with ssh.connect(machine) as conn:
                done = await ssh.run(conn, ["cat", f"{machine.run_dir(run_id)}/logs/metrics.jsonl"])
            data = (done.stdout or b"") if done.exit_status == 0 else b""
        except TrainrigError:
            if record.stack is None:
                raise
            # A powered-off cloud machine: the metrics as last synced to its bucket.
            data = await asyncio.to_thread(stored_object, record.effective_spec(), "logs/metrics.jsonl") or b""
        return [p for _, _, p in parse_lines(data, 0) if p is not None]

    async def tensorboard(self, run_id: str, local_port: int, on_ready: Callable[[Tunnel], None]) -> None:
        """TensorBoard on the run's machine over its logs, forwarded to localhost:`local_port` (or
        the next free port) through the SSH connection; runs until cancelled (Ctrl-C)."""
        record = self._live(run_id)
        machine = await self._machine(record)
        async with ssh.connect(machine) as conn:
            await serve_tensorboard(conn, machine, run_id, local_port, on_ready)

    async def read_log(self, run_id: str) -> bytes:
        """The training log, whole (see `stream_log` for one that may be large)."""
        parts: list[bytes] = []
        await self.stream_log(run_id, parts.append)
        return b"".join(parts)

    async def stream_log(self, run_id: str, write: Callable[[bytes], object]) -> int:
        """Pass the training log to `write` piece by piece (memory stays bounded however long the
        log); returns its size."""
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

    async def _read_log_from_machine(self, record: RunRecord, write: Callable[[bytes], object]) -> int:
        run_id = record.run_id
        if record.state not in ("up", "started", "finished") or record.machine is None:
            raise NoMachine(run_id, record.state)
        machine = await self._machine(record)
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
            raise BadInput(f"run {run_id} has no log yet: `trainrig start {run_id}` starts its training.")
        return size

    # -- status / ls / stop ---------------------------------------------------------------------
    async def status(self, run_id: str) -> StatusReport:
        record = self.journal.load(run_id)
        if record.state not in ("up", "started", "finished") or record.machine is None:
            return StatusReport(record, None)
        try:
            machine = await self._machine(record)
            async with ssh.connect(machine) as conn:
                raw = json.loads(await tools.call(conn, machine, ["status", machine.run_dir(run_id)]))
                last = json.loads(await tools.call(conn, machine, ["telemetry", machine.run_dir(run_id)]))
        except TrainrigError as e:
            # A cloud machine powers itself off after the training: its bucket still has the last status.
            stored = await asyncio.to_thread(stored_status, record.effective_spec()) if record.stack else None
            if stored is not None and stored.done:
                self._remember_outcome(run_id, stored)
                return StatusReport(self.journal.load(run_id), stored, f"{e} (the status shown is the last one synced to the bucket)")
            hint = ""
            if record.spec.cloud is not None and isinstance(e, Unreachable):
                hint = (f" (SSH is let in from {record.spec.cloud.ssh_from} only: if this computer's address changed, "
                        f"set trainrig:sshFrom in stacks/Pulumi.{run_id}.yaml and `pulumi up -s {run_id}`)")
            return StatusReport(record, stored, str(e) + hint)
        status = Status.from_dict(raw) if raw else None
        if status is not None and status.done:
            self._remember_outcome(run_id, status)
        return StatusReport(self.journal.load(run_id), status, telemetry=Sample.from_dict(last) if last else None)

    def ls(self) -> list[RunRecord]:
        return self.journal.all()

    def unknown_stacks(self) -> list[str]:
        """Stacks in the Pulumi backend with no live run in this journal: resources nobody here watches."""
        import importlib.util

        from infra.engine import Engine, check_installed
        from infra.project import project_dir

        check_installed("gcp" if importlib.util.find_spec("pulumi_gcp") else "aws")  # the SDK and the CLI, or one sentence
        live = {r.run_id for r in self.journal.all() if r.state != "destroyed"}
        return [s for s in Engine(project_dir(self.journal.root.parent), self.journal.root.parent).stacks() if s not in live]

    async def stop(self, run_id: str) -> Status | None:
        record = self._live(run_id)
        machine = await self._machine(record)
        async with ssh.connect(machine) as conn:
            # A cloud machine's final sync to its bucket may take minutes; its supervisor then powers it off.
            wait = CLOUD_STOP_WAIT_S if machine.shutdown_after else STOP_WAIT_S
            await tools.call(conn, machine, ["stop", machine.run_dir(run_id), str(wait)])
            raw = json.loads(await tools.call(conn, machine, ["status", machine.run_dir(run_id)]))
        status = Status.from_dict(raw) if raw else None
        if status is not None:
            self._remember_outcome(run_id, status)
        return status

    # -- download / down ------------------------------------------------------------------------
    async def download(self, run_id: str, outputs_root: Path) -> Path:
        """Outputs and logs into a new folder of `outputs_root`; a download that was cut off (Ctrl-C,
        kill -9, a lost connection) is resumed in its own folder, never begun again beside it."""
        with self.journal.lock(run_id, "download"):  # two downloads would write the same folder
            record = self.journal.load(run_id)
            if record.effective_spec().output_store:
                return await self._download_from_bucket(record, outputs_root)
            if record.state not in ("up", "started", "finished") or record.machine is None:
                where = f" (earlier downloads: {', '.join(record.downloads)})" if record.downloads else ""
                raise NoMachine(run_id, record.state, f", there is nothing to download from{where}")
            machine = await self._machine(record)
            run_dir = machine.run_dir(run_id)
            folder: Path | None = None
            try:
                async with ssh.connect(machine) as conn:
                    raw = json.loads(await tools.call(conn, machine, ["status", run_dir]))
                    status = Status.from_dict(raw) if raw else None
                    if status is None:
                        raise BadInput(f"run {run_id} has not started yet, there is nothing to download: `trainrig start {run_id}`.")
                    if status.done and status.final_sync_ok is False:
                        status = await self._resync(conn, machine, record, outputs_root)
                    if not status.done:
                        self.emit(Notice(f"the training is still running: downloading its last sync ({status.last_sync_at or 'none yet'})"))
                    folder = self._download_folder(record, outputs_root)
                    self._phase(record, "collecting", str(folder))
                    outputs = await transfer.download(conn, machine, f"{run_dir}/store/outputs", folder / "outputs", "outputs", self.emit)
                    logs = await transfer.download(conn, machine, f"{run_dir}/store/logs", folder / "logs", "logs", self.emit)
            except (TrainrigError, asyncssh.Error, ConnectionError) as e:  # this computer's full disk: `run` says it
                if folder is None or isinstance(e, BadInput):
                    raise
                # Every hint works as printed: the same command resumes into the same folder.
                retry = with_outputs(f"trainrig download {run_id}", outputs_root)
                if isinstance(e, (Unreachable, asyncssh.Error, ConnectionError)):
                    raise ConnectionLost(f"downloading into {folder}", _why(e) if not isinstance(e, TrainrigError) else str(e),
                                         retry) from e
                raise RemoteFailed(f"the download into {folder} stopped half-way ({e}): `{retry}` resumes it") from e
            return self._downloaded(run_id, folder, status, outputs, logs)

    def _download_folder(self, record: RunRecord, outputs_root: Path) -> Path:
        """The folder of a download cut off earlier, else a new one, recorded before its first byte."""
        pending = Path(record.download_pending) if record.download_pending else None
        ours = f"_{record.spec.code_name}_{record.spec.dataset_name}"
        if pending is not None and pending.is_dir() and pending.name.endswith(ours):
            if pending.parent == outputs_root.absolute():
                self.emit(Notice(f"resuming the download that was cut off in {outputs_root / pending.name}"))
                return outputs_root / pending.name
            # Downloads go elsewhere now: never leave a half folder behind, the machine has it all.
            shutil.rmtree(pending)
            self.emit(Notice(f"removed {pending}, what a download cut off earlier had left"))
        folder = outputs_root / folder_name(record)
        record.download_pending = str(folder.absolute())
        self.journal.save(record)
        return folder

    async def _download_from_bucket(self, record: RunRecord, outputs_root: Path) -> Path:
        """From the run's output bucket: needs no machine, so it works after `down` too."""
        folder = self._download_folder(record, outputs_root)
        spec = record.effective_spec()
        self._phase(record, "collecting", f"{output_location(spec)} -> {folder}")
        status, outputs, logs = await asyncio.to_thread(fetch_outputs, spec, folder, self.emit)
        if record.state == "finished" and record.machine is not None and (
                status is None or not status.done or status.final_sync_ok is False):
            # A finished run whose end never reached the bucket (its final sync failed there): the
            # machine still holds it all.
            await self._resync_bucket_run(record, outputs_root)
            status, outputs, logs = await asyncio.to_thread(fetch_outputs, spec, folder, self.emit)
        if status is None:
            self._no_download(record.run_id, folder)
            raise BadInput(f"run {record.run_id} has synced nothing to {output_location(spec)} yet: `trainrig start` it first.")
        if not status.done:
            self.emit(Notice(f"the training is still running: downloading its last sync ({status.last_sync_at or 'none yet'})"))
        return self._downloaded(record.run_id, folder, status, outputs, logs)

    def _no_download(self, run_id: str, folder: Path) -> None:
        """There was nothing to download: no folder stays behind (an empty one would look like a run)."""
        shutil.rmtree(folder, ignore_errors=True)
        record = self.journal.load(run_id)
        record.download_pending = ""
        self.journal.save(record)

    def _downloaded(self, run_id: str, folder: Path, status: Status | None, outputs: transfer.TransferResult,
                    logs: transfer.TransferResult) -> Path:
        record = self.journal.load(run_id)
        record.downloads.append(str(folder))
        record.download_pending = ""
        record.final_download = record.final_download or bool(status and status.done)
        self.journal.save(record)
        write_manifest(folder, record, status, outputs, logs)
        left = [f"{what}: {r.left_out_text()}" for what, r in (("outputs", outputs), ("logs", logs)) if r.left_out]
        self.emit(Notice(f"outputs: {outputs.files_total} files ({human_size(outputs.bytes_total or outputs.bytes_sent)}) in {folder}"
                         + "".join(f"; {x}" for x in left)))
        return folder

    async def down(self, run_id: str, discard_outputs: bool = False, stop: bool = False) -> None:
        """Destroy the run; refuses (down_checks' typed refusals) a training still going unless
        `stop`, and outputs never downloaded unless `discard_outputs`."""
        record = self.journal.load(run_id)
        if record.state == "destroyed":
            self.emit(Notice(f"run {run_id} was already destroyed"))
            return
        await down_checks.check(record, lambda: self._machine(record), discard_outputs, stop,
                                lambda: self.stop(run_id))
        record = self.journal.load(run_id)  # a stop above recorded the outcome
        with self.journal.lock(run_id, "down"):
            was = record.state
            record.state = "destroying"
            try:
                self._phase(record, "destroying", f"target {record.spec.target}")
            except OSError as e:
                # This computer's disk is full (maybe with this very run's sandbox): destroying is
                # what frees it, so destroy first and record after; till then the record says `was`,
                # and `down` again is harmless.
                self.emit(Notice(f"could not record that run {run_id} is being destroyed ({_why(e)}): destroying it anyway"))
            target = get_target(record.spec.target)
            await target.destroy(record, self.journal, self.emit)
            record.state = "destroyed"
            try:
                self._phase(record, "destroyed")
            except OSError as e:
                raise TrainrigError(
                    f"run {run_id}'s machine is destroyed, but its record could not be saved ({_why(e)}) and still says "
                    f"{was}: free space in {self.journal.dir(run_id)}, then `trainrig down {run_id}` records it."
                ) from e
            self.journal.forget_secrets(run_id)  # only once recorded: a `down` again may need them

    # -- everything -----------------------------------------------------------------------------
    async def run(self, spec: RunSpec, outputs_root: Path, max_restarts: int | None = None) -> RunResult:
        """up, start and follow, download, down. An interrupt (Ctrl-C) leaves the run going."""
        record = await self.up(spec, max_restarts)
        try:
            status = await self.start(record.run_id, follow_log=True)
        except TrainrigError as e:
            state = self.journal.load(record.run_id).state
            if state == "finished":  # a restart after a preemption failed: its error says what to do
                pass
            elif state == "started":
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

    # -- outputs that did not all come home ---------------------------------------------------------
    @staticmethod
    def _kept(rid: str, outputs_root: Path, why: str, where: str) -> str:
        again = with_outputs(f"trainrig download {rid}", outputs_root)
        return (f"run {rid}'s outputs are not all on this computer: {why}. Its machine is kept: free space {where}, "
                f"then `{again}` (it finishes the sync first), then `trainrig down {rid}`.")

    @staticmethod
    def _machine_disk(record: RunRecord) -> str:
        m = record.machine
        if m is None:
            return "on the machine"
        return f"on this computer's disk holding {m.root}" if record.spec.target == "local" else f"on the machine ({m.address})"

    async def _resync(self, conn: asyncssh.SSHClientConnection, machine: Machine, record: RunRecord,
                      outputs_root: Path) -> Status:
        """The run's final sync did not finish (a full disk, a failing bucket): run it again on the
        machine before downloading; if it still cannot finish, say so rather than download a part."""
        rid = record.run_id
        self.emit(Notice("the run's final sync of outputs had not finished: syncing again on the machine"))
        python = await self._tool_python(conn, record, machine)
        proc = await tools.open_process(conn, machine, ["resync", machine.run_dir(rid)], python)
        line = await proc.stdout.readline()
        await proc.wait()
        if not line:
            err = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
            raise RemoteFailed(f"could not sync run {rid}'s outputs again on the machine: {err[-1] if err else 'the connection closed'}")
        status = Status.from_dict(json.loads(line))
        if status.final_sync_ok is False:
            raise OutputsKept(self._kept(rid, outputs_root, f"its final sync on the machine still cannot finish ({status.sync_error})",
                                         self._machine_disk(record)))
        return status

    async def _resync_bucket_run(self, record: RunRecord, outputs_root: Path) -> None:
        if record.state not in ("up", "started", "finished") or record.machine is None:
            raise OutputsKept(f"run {record.run_id}'s final sync to its bucket did not finish and its machine is gone: "
                              f"the bucket holds only what reached it.")
        try:
            machine = await self._machine(record)
            async with ssh.connect(machine) as conn:
                await tools.call(conn, machine, ["status", machine.run_dir(record.run_id)])  # installs the tools if need be
                await self._resync(conn, machine, record, outputs_root)
        except (Unreachable, AuthFailed, HostKeyMismatch, ConnectionLost) as e:
            raise OutputsKept(f"run {record.run_id}'s final sync to its bucket did not finish, and its machine cannot be "
                              f"reached to finish it ({e}): the bucket holds only what reached it.") from e

    async def _not_downloaded(self, run_id: str, folder: Path) -> list[str]:
        """The files the run's store lists that `folder` lacks (or holds with another size)."""
        record = self.journal.load(run_id)
        listed: list[tuple[str, int]] = []
        where = output_location(record.effective_spec())
        if where is not None:
            def bucket_listing() -> list[tuple[str, int]]:
                return [(f"{name}/{o.rel}", o.size) for name in ("outputs", "logs") for o in open_store(where.child(name)).objects()]

            listed = await asyncio.to_thread(bucket_listing)
        else:
            machine = await self._machine(record)
            async with ssh.connect(machine) as conn:
                for name in ("outputs", "logs"):
                    raw = json.loads(await tools.call(conn, machine, ["list", f"{machine.run_dir(run_id)}/store/{name}"]))
                    listed += [(f"{name}/{rel}", size) for rel, size in raw["files"]]
        missing = []
        for rel, size in listed:
            try:
                if folder.joinpath(*rel.split("/")).stat().st_size == size:
                    continue
            except OSError:
                pass
            missing.append(rel)
        return missing


def with_outputs(command: str, outputs_root: Path) -> str:
    """A hint that downloads: it names the outputs folder the user gave, so it works as printed."""
    return command + ("" if str(outputs_root) == "outputs" else f" --outputs {shlex.quote(str(outputs_root))}")


def _why(e: BaseException) -> str:
    reason = getattr(e, "reason", "") or (e.strerror if isinstance(e, OSError) else "")
    return reason or type(e).__name__


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
