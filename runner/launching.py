"""Starting a run, for Lifecycle: upload the code and dataset (only what changed), then launch the
supervisor on the machine and hand its first streamed frames to the follower. A multi-node run does
both on every node at once, each supervisor told its rank and peers (runner/nodes.py)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import AsyncExitStack

import asyncssh

from infra.spec import Launcher, RunSpec, is_bucket
from runner import nodes, restarts, ssh, tools, transfer
from runner.buckets import output_location, tool_packages
from runner.errors import AlreadyTraining, BadInput, ConnectionLost, RemoteFailed
from runner.events import Notice
from runner.follow import Offsets
from runner.ignore import IgnoreRules
from runner.journal import RunRecord
from runner.lifecycle_base import LifecycleBase, for_run, why as _why
from runner.machine import Machine
from runner.machine_tools import MachineTools
from runner.nodes import NodeLaunch, NodePlan
from runner.remote.config import SupervisorConfig
from runner.remote.main import ALREADY_RUNNING
from runner.remote.status import Status
from runner.units import human_size


def check_sources(spec: RunSpec) -> None:
    """The code folder (and a dataset folder) must still be where the run was made: uploading a
    folder that is gone would send nothing and train nothing."""
    for what, path in (("code", spec.code_path), ("dataset", None if is_bucket(spec.dataset) else spec.dataset)):
        if path and not os.path.isdir(path):
            raise BadInput(f"the {what} folder {path} is not there any more: put it back there, then run the same "
                           "command again.")


def standalone_torchrun_args(spec: RunSpec) -> tuple[str, ...]:
    """torchrun on a one-machine run: `--standalone` picks a free port on the machine itself (a port
    chosen here could be taken there), one process per GPU (one on the CPU), no restarts (trainrig's
    own restarts handle a lost machine)."""
    return ("-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(max(nodes.gpus_per_node(spec), 1)), "--max-restarts", "0")


class Launching(LifecycleBase):
    async def _upload_and_launch(
        self, conn: asyncssh.SSHClientConnection, record: RunRecord, machine: Machine, follow_log: bool,
        restore: bool = False, node: NodeLaunch | None = None, plan: NodePlan | None = None,
    ) -> tuple[Offsets, asyncssh.SSHClientProcess | None]:
        """Upload code and dataset, start the supervisor; with `follow_log`, the returned process
        already streams the run (log, metrics and telemetry of this attempt: one round trip less
        before the first log line). `node`: one node of a multi-node run (rank 0 records the start)."""
        lead = node is None or node.rank == 0
        await self._upload(conn, record, machine, lead, f"node {node.rank}: " if node is not None else "")
        return await self._launch(conn, record, machine, follow_log, restore, node, plan)

    async def _upload(self, conn: asyncssh.SSHClientConnection, record: RunRecord, machine: Machine, lead: bool,
                      which: str) -> None:
        spec, rid = record.effective_spec(), record.run_id
        check_sources(spec)
        run_dir = machine.run_dir(rid)
        # A sweep trial's dataset folder is its slot's, uploaded (or pulled from its bucket by the
        # supervisor) once for all the trials trained there, only what changed, not again for each trial.
        shared = bool(record.borrowed_from) and bool(spec.dataset)
        data_dir = machine.run_dir(record.borrowed_from) if shared else run_dir
        phase = self._phase if lead else (lambda *_: None)  # the phases once, not once per node
        uploads = [
            transfer.upload(conn, machine, spec.code_path, f"{run_dir}/code", f"{run_dir}/.code.index.json",
                            IgnoreRules(spec.code_path).skip, "code", self.emit)
        ]
        phase(record, "uploading code", spec.code_path)
        if spec.dataset and not is_bucket(spec.dataset):
            phase(record, "uploading dataset", spec.dataset)
            uploads.append(
                transfer.upload(conn, machine, spec.dataset, f"{data_dir}/dataset", f"{data_dir}/.dataset.index.json",
                                None, "dataset", self.emit)
            )
        results = await asyncio.gather(*uploads)
        if shared:  # the trial's folder links to it (and to its indexes); the trial's `down` removes the links only
            names = ("dataset", ".dataset.index.json", ".sync-dataset.json")
            link = ('mkdir -p -- "$1/dataset" && cd -- "$2" && rm -rf -- "$3" "$4" "$5" && ln -s -- "$1/$3" "$3" '
                    '&& ln -s -- "$1/$4" "$4" && ln -s -- "$1/$5" "$5"')  # one round trip
            done = await ssh.run(conn, ["sh", "-c", link, "sh", data_dir, run_dir, *names])
            if done.exit_status != 0:
                raise RemoteFailed(f"could not link run {rid}'s dataset to its slot's copy: "
                                   f"{(done.stderr or b'').decode(errors='replace').strip()}")
        for label, r in zip(("code", "dataset"), results):
            left_out = f"; {r.left_out_text()}" if r.left_out else ""  # links out of the folder, broken links...
            if r.files_sent or r.deleted:
                self.emit(Notice(f"{which}{label}: sent {r.files_sent} of {r.files_total} files ({human_size(r.bytes_sent)})"
                                 + (f", removed {r.deleted}" if r.deleted else "") + left_out))
            else:
                self.emit(Notice(f"{which}{label}: unchanged ({r.files_total} files), nothing sent{left_out}"))

    async def _launch(
        self, conn: asyncssh.SSHClientConnection, record: RunRecord, machine: Machine, follow_log: bool,
        restore: bool, node: NodeLaunch | None, plan: NodePlan | None,
    ) -> tuple[Offsets, asyncssh.SSHClientProcess | None]:
        spec, rid = record.effective_spec(), record.run_id
        run_dir = machine.run_dir(rid)
        python = await self._tool_python(conn, record, machine)
        out = output_location(spec)
        watch, metadata_url = restarts.preemption_watch(spec, node.rank if node is not None else 0)
        config = SupervisorConfig(
            run_id=rid, venv_cache=machine.venv_cache, module=spec.entry.module, command=list(spec.entry.command),
            args=list(spec.entry.args), env=[list(kv) for kv in spec.env], install_script=spec.install_script, max_runtime_s=spec.max_runtime_s,
            sync_interval_s=spec.sync_interval_s, shutdown_after=machine.shutdown_after,
            dataset_uri=spec.dataset if is_bucket(spec.dataset) else None, output_uri=str(out) if out else None,
            training_python=machine.python, preemption_watch=watch, metadata_url=metadata_url,
            restore_from_store=restore,
        )
        if node is not None and plan is not None:
            config.env += [list(kv) for kv in node.env]
            config.node_rank, config.peers, config.peer_token = node.rank, [list(p) for p in plan.peers], plan.token
            config.launcher_args = list(node.launcher_args)
            if out is not None and node.rank:  # a bucket: each node's store of its own, beside rank 0's
                config.output_uri = str(out.child(f"node-{node.rank}"))
        elif spec.launcher == Launcher.TORCHRUN:  # one machine (several GPUs, say): torchrun all the same
            config.launcher_args = list(standalone_torchrun_args(spec))
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
        if reply.get("error") == ALREADY_RUNNING:  # started by another client since our check
            proc.close()
            raise AlreadyTraining(rid)
        if node is not None and node.rank > 0:  # rank 0 speaks for the run
            await proc.wait()
            return Offsets(reply["log_offset"]), None
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
        return await MachineTools(conn, machine).tool_python(packages)

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

    @for_run
    async def start(self, run_id: str, follow_log: bool = True) -> Status | None:
        record = self._live(run_id)
        from runner.sweep.slots import refuse_slot

        refuse_slot(record, self.journal)  # a sweep's machine: its trials train there, never the slot itself
        self._warn_cloud_limit(record)
        machine = await self._machine(record)
        if len(record.all_nodes()) > 1:
            return await self._start_nodes(record, follow_log)
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

    async def _start_nodes(self, record: RunRecord, follow_log: bool) -> Status | None:
        """Every node at once: uploads, then supervisors told their rank and peers; rank 0 is followed.
        A node that could not start stops those that did: none is left training alone."""
        run_id, machines = record.run_id, record.all_nodes()
        async with AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(ssh.connect(m)) for m in machines]
            with self.journal.lock(run_id, "start"):
                for conn, m in zip(conns, machines):
                    await self._refuse_if_training(conn, m, run_id)
                results = await self._launch_nodes(record, conns, machines, follow_log)
            offsets, proc = results
            if proc is None:
                return None
            return await self._follow(record, offsets, conns[0], proc, machines[0])

    async def _launch_nodes(self, record: RunRecord, conns: list[asyncssh.SSHClientConnection], machines: list[Machine],
                            follow_log: bool, restore: bool = False) -> tuple[Offsets, asyncssh.SSHClientProcess | None]:
        """Upload to and launch every node at once (the caller holds the run); rank 0's offsets (and its
        streaming process with `follow_log`). A node that could not start stops those that did."""
        run_id = record.run_id
        plan = nodes.plan(record.spec, machines)
        assert plan is not None
        results = await asyncio.gather(*(
            self._upload_and_launch(c, record, m, follow_log and k == 0, restore=restore, node=plan.nodes[k], plan=plan)
            for k, (c, m) in enumerate(zip(conns, machines))), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await asyncio.gather(*(MachineTools(c, m).stop(run_id, 10.0) for c, m in zip(conns, machines)),
                                 return_exceptions=True)
            for r in results:
                if not isinstance(r, BaseException) and r[1] is not None:
                    r[1].close()
            e = failed[0]
            if isinstance(e, (OSError, asyncssh.Error)):
                raise ConnectionLost(f"starting run {run_id} on its {len(machines)} nodes", _why(e),
                                     f"trainrig start {run_id}") from e
            raise e
        return results[0]  # type: ignore[return-value]
