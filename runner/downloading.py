"""Downloading a run's outputs and logs, for Lifecycle: into one folder per download, resumed in
the same folder when cut off, after a final sync that did not finish is run again. A multi-node
run's outputs come from rank 0 (with `--outputs-from all`, node K's also under node-K/), and every
node's logs under logs/node-K/."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

import asyncssh

from runner import ssh, tools, transfer
from runner.buckets import fetch_outputs, output_location
from runner.errors import (
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
from infra.spec import OutputsFrom
from runner.events import Notice
from runner.journal import RunRecord
from runner.lifecycle_base import LifecycleBase, for_run, why as _why
from runner.machine import Machine
from runner.machine_tools import MachineTools
from runner.manifest import write_manifest
from runner.remote.status import Status
from runner.remote.stores import StoreError, open_store
from runner.remote.sync import pull
from runner.states import HAS_MACHINE, RunState
from runner.units import human_size


def folder_name(record: RunRecord, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when or time.time()))
    return f"{stamp}_{record.spec.code_name}_{record.spec.dataset_name}"


def with_outputs(command: str, outputs_root: Path) -> str:
    """A hint that downloads: it names the outputs folder the user gave, so it works as printed."""
    return command + ("" if str(outputs_root) == "outputs" else f" --outputs {shlex.quote(str(outputs_root))}")


def check_outputs_root(root: Path) -> None:
    """`--outputs` must be a folder this computer can write to: checked before anything starts (a run,
    every trial of a sweep, a download), not found out once the outputs are due to come home."""
    here = Path(os.path.abspath(root))
    while not here.exists() and here != here.parent:  # nothing made here: the download makes the folders
        here = here.parent
    if not here.is_dir():
        raise BadInput(f"--outputs {root} cannot be a folder: {here} is a file; give another --outputs.")
    if not os.access(here, os.W_OK | os.X_OK):
        raise BadInput(f"--outputs {root} cannot be made or written: {here} is not writable by you; give another --outputs.")


class Downloading(LifecycleBase):
    @for_run
    async def download(self, run_id: str, outputs_root: Path) -> Path:
        """Outputs and logs into a new folder of `outputs_root`; a download that was cut off (Ctrl-C,
        kill -9, a lost connection) is resumed in its own folder, never begun again beside it."""
        check_outputs_root(outputs_root)
        with self.journal.lock(run_id, "download"):  # two downloads would write the same folder
            record = self.journal.load(run_id)
            if record.effective_spec().output_store:
                return await self._download_from_bucket(record, outputs_root)
            if record.state not in HAS_MACHINE or record.machine is None:
                where = f" (earlier downloads: {', '.join(record.downloads)})" if record.downloads else ""
                raise NoMachine(run_id, record.state, f", there is nothing to download from{where}")
            machine = await self._machine(record)
            run_dir = machine.run_dir(run_id)
            folder: Path | None = None
            try:
                async with ssh.connect(machine) as conn:
                    status = await MachineTools(conn, machine).status(run_id)
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
                    if len(record.all_nodes()) > 1:
                        await self._download_nodes(record, folder)
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

    async def _download_nodes(self, record: RunRecord, folder: Path) -> None:
        """Every node's logs into logs/node-K/ (rank 0's too); with `--outputs-from all`, the outputs
        of node K >= 1 into node-K/outputs/ (rank 0's are the folder's own outputs/)."""
        everything = record.spec.outputs_from == OutputsFrom.ALL

        async def one(k: int, m: Machine) -> None:
            async with ssh.connect(m) as conn:
                store = f"{m.run_dir(record.run_id)}/store"
                await transfer.download(conn, m, f"{store}/logs", folder / "logs" / f"node-{k}", f"node {k}'s logs", self.emit)
                if everything and k:
                    await transfer.download(conn, m, f"{store}/outputs", folder / f"node-{k}" / "outputs",
                                            f"node {k}'s outputs", self.emit)

        await asyncio.gather(*(one(k, m) for k, m in enumerate(record.all_nodes())))

    @staticmethod
    def _nodes_from_bucket(record: RunRecord, folder: Path) -> None:
        """A multi-node run's bucket: node K syncs to <store>/<run>/node-K/ (rank 0 to the run's own
        prefix); the same layout as a download over SSH."""
        where = output_location(record.effective_spec())
        assert where is not None
        everything = record.spec.outputs_from == OutputsFrom.ALL
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(len(record.all_nodes())):
                node = where if k == 0 else where.child(f"node-{k}")
                pairs = [(node.child("logs"), folder / "logs" / f"node-{k}")]
                if everything and k:
                    pairs.append((node.child("outputs"), folder / f"node-{k}" / "outputs"))
                for i, (src, dest) in enumerate(pairs):
                    try:
                        pull(open_store(src), str(dest), str(Path(tmp) / f"{k}-{i}.json"))
                    except StoreError as e:
                        raise RemoteFailed(f"cannot download node {k}'s files from {src}: {e}") from e

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
        if record.state == RunState.FINISHED and record.machine is not None and (
                status is None or not status.done or status.final_sync_ok is False):
            # A finished run whose end never reached the bucket (its final sync failed there): the
            # machine still holds it all.
            await self._resync_bucket_run(record, outputs_root)
            status, outputs, logs = await asyncio.to_thread(fetch_outputs, spec, folder, self.emit)
        if status is not None and len(record.all_nodes()) > 1:
            await asyncio.to_thread(self._nodes_from_bucket, record, folder)
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
        if record.state not in HAS_MACHINE or record.machine is None:
            raise OutputsKept(f"run {record.run_id}'s final sync to its bucket did not finish and its machine is gone: "
                              f"the bucket holds only what reached it.")
        try:
            machine = await self._machine(record)
            async with ssh.connect(machine) as conn:
                await MachineTools(conn, machine).status(record.run_id)  # installs the tools if need be
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
                on_machine = MachineTools(conn, machine)
                for name in ("outputs", "logs"):
                    stored = await on_machine.files(f"{machine.run_dir(run_id)}/store/{name}")
                    listed += [(f"{name}/{f.path}", f.size) for f in stored]
        missing = []
        for rel, size in listed:
            try:
                if folder.joinpath(*rel.split("/")).stat().st_size == size:
                    continue
            except OSError:
                pass
            missing.append(rel)
        return missing
