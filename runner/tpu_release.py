"""A TPU run's machine deleted as soon as its outputs are safe in its bucket.

A GPU VM that halts itself stops billing its machine time, but a TPU VM whose guest halted may
still bill. So once a TPU run's status says it is over and its final sync finished (the supervisor
puts that status in the bucket before anywhere else), its TPU node alone is deleted; the bucket,
identity and network stay until `down`, and `status`, `logs` and `download` read the bucket.
Called by whoever sees the run end (a follower, `status`); anything else is left as it was.
"""

from __future__ import annotations

import asyncio
import time

from runner import restarts
from runner.errors import BadInput, TrainrigError
from runner.events import EventSink, Notice
from runner.journal import Journal, RunRecord
from runner.remote.status import Status
from runner.states import RunState

LOCK_WAIT_S = 30.0  # another command on the run (a download, a restart) ends first; `down` makes this moot


def is_tpu_run(record: RunRecord) -> bool:
    if record.spec.target != "gcp" or record.spec.cloud is None:
        return False
    from infra import catalog

    entry = catalog.load().find("gcp", record.spec.cloud.accelerator)
    return entry is not None and entry.kind == "tpu"


def releasable(record: RunRecord, status: Status | None) -> bool:
    """The run's own TPU node, still there, whose run is over for good with every output in its bucket."""
    return (status is not None and status.run_id == record.run_id and is_tpu_run(record)
            and record.stack_created and record.stack is not None and not record.machine_released_at
            and record.state in (RunState.STARTED, RunState.FINISHED) and bool(record.effective_spec().output_store)
            and status.done and status.final_sync_ok is True
            # A run about to go on on a new machine, or a status from a machine already replaced: the
            # node in the stack is (or will be) the new attempt's.
            and not restarts.restartable(record, status) and not restarts.replaced(record, status))


async def release_if_done(record: RunRecord, status: Status | None, journal: Journal, on_event: EventSink) -> bool:
    """Delete the run's TPU node if `status` (its newest, from the machine or the bucket) says the
    run is over with its final sync done; True if it was deleted now. Never raises for the run: a
    failure is told (the node then goes at `down`, and `trainrig ls` shows the run holds resources)."""
    if not releasable(record, status):
        return False
    rid = record.run_id
    keep = f"its TPU machine stays until `trainrig download {rid}` and `trainrig down {rid}`"
    lock = None
    deadline = time.monotonic() + LOCK_WAIT_S
    while lock is None:
        try:
            lock = journal.lock(rid, "release")
            lock.__enter__()
        except BadInput:
            lock = None
            if time.monotonic() > deadline:
                on_event(Notice(f"run {rid} is over, but another trainrig command holds it: {keep}"))
                return False
            await asyncio.sleep(1)
    try:
        now = journal.load(rid)  # what happened meanwhile (a `down`, another follower's release)
        if not releasable(now, status):
            return False
        from runner.targets.cloud import release_machine

        on_event(Notice(f"run {rid} is over and its outputs are in its bucket: deleting its TPU machine, which may "
                        "bill even halted"))
        await release_machine(now, journal, on_event)
        return True
    except (TrainrigError, OSError) as e:  # OSError: this computer's full disk, saving the record
        on_event(Notice(f"could not delete run {rid}'s TPU machine ({e}): {keep}"))
        return False
    finally:
        lock.__exit__(None, None, None)
