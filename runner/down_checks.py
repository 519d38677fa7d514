"""What `down` refuses to destroy unless told: a training still going, and outputs never downloaded.

The refusals carry their ways out as data (commands), so the command line prints them, asks about
them on a terminal, and a UI offers them as buttons."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

from infra.errors import BadInput
from infra.spec import OutputsFrom
from runner import ssh
from runner.errors import TrainrigError
from runner.journal import RunRecord
from runner.machine import Machine
from runner.machine_tools import MachineTools
from runner.remote.status import Status
from runner.states import RunState


class TrainingGoing(BadInput):
    """`down` of a run whose training still runs, without `--stop`."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.stop_and_down, self.follow = f"trainrig down {run_id} --stop", f"trainrig logs {run_id} -f"
        super().__init__(f"run {run_id} is still training: `{self.stop_and_down}` stops it first (its outputs are "
                         f"synced once more), or `{self.follow}` waits for its end.")


class OutputsNotDownloaded(BadInput):
    """`down` of a run whose outputs would be deleted before anyone downloaded them."""

    def __init__(self, run_id: str, stop: bool):
        self.run_id = run_id
        self.download = f"trainrig download {run_id}"
        self.discard = f"trainrig down {run_id}{' --stop' if stop else ''} --discard-outputs"
        super().__init__(f"run {run_id}'s outputs were never downloaded, and `down` deletes them: `{self.download}` "
                         f"first, or `{self.discard}` if you do not want them.")


@dataclass(frozen=True)
class MachineView:
    """What `down` needs to know of the machine (None: it could not be asked)."""

    status: Status | None
    has_outputs: bool


async def look(machine: Machine, run_id: str) -> MachineView:
    """The run's status (a dead supervisor settled) and whether any output file exists on the machine,
    synced to its store or not yet (e.g. a final sync that a full disk stopped)."""
    run_dir = machine.run_dir(run_id)
    async with ssh.connect(machine) as conn:
        status = await MachineTools(conn, machine).status(run_id)
        found = await ssh.run(conn, ["find", f"{run_dir}/outputs", f"{run_dir}/store/outputs", "-type", "f",
                                     "-print", "-quit"])
    return MachineView(status, bool((found.stdout or b"").strip()))


async def check(record: RunRecord, machine: Callable[[], Awaitable[Machine]], discard_outputs: bool, stop: bool,
                stop_training: Callable[[], Awaitable[object]]) -> None:
    """Raise the refusal that applies, if any; with `stop`, stops a training that still runs (through
    `stop_training`) before it looks at the outputs, so that they are the final ones."""
    rid = record.run_id
    trained = record.state in (RunState.STARTED, RunState.FINISHED)
    if not trained or record.final_download:
        return
    spec = record.spec  # not effective_spec(): a stack's own bucket is deleted with the stack
    if record.stack is not None:
        # A cloud machine powers itself off after its training; its outputs are in the stack's bucket
        # unless they went to the user's own (which `down` keeps).
        if not spec.output_store and not discard_outputs:
            raise OutputsNotDownloaded(rid, stop)
        return
    try:
        await machine()  # reached (a local run's servers started again): every node's address is known
        # Every node: rank 0 may be done while another still trains or syncs its outputs.
        views = list(await asyncio.gather(*(look(m, rid) for m in record.all_nodes())))
        going = any(v.status is not None and not v.status.done for v in views)
        outputs = views if spec.outputs_from == OutputsFrom.ALL else views[:1]
        view: MachineView | None = MachineView(views[0].status, any(v.has_outputs for v in outputs))
    except TrainrigError:
        view, going = None, False  # the machine cannot be asked: assume the worst
    if going:
        if not stop:
            raise TrainingGoing(rid)
        await stop_training()
    if discard_outputs or spec.output_store:  # outputs in the user's bucket are not deleted by `down`
        return
    if view is None or view.has_outputs:  # never asked, or outputs there (rank 0's, or any node's with --outputs-from all)
        raise OutputsNotDownloaded(rid, stop)
