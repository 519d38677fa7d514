"""The sweep's machines: `--parallel P` slot runs (`<code>-<dataset>-s<K>`), provisioned once and
lent to one trial after another; destroyed at the sweep's end, also after a failure or an interrupt,
so nothing is left billing. A slot is a run of its own in the journal (it shows in `trainrig ls`
while it holds a machine, and `trainrig down SLOT` destroys it like any run)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from infra import names
from infra.spec import RunSpec
from runner.errors import BadInput
from runner.events import Notice
from runner.journal import RunRecord
from runner.lifecycle import Lifecycle
from runner.states import RunState


def refuse_slot(record: RunRecord, journal) -> None:  # type: ignore[no-untyped-def]
    """A sweep's slot trains only its sweep's trials, each a run of its own: `start` (or `logs`) of
    the slot itself is bad input, naming the trial on it now, if any, whose log is the one wanted."""
    if not record.sweep or record.borrowed_from:
        return
    on_it = [r.run_id for r in journal.all() if r.borrowed_from == record.run_id and r.state != RunState.DESTROYED]
    now = (f"trial {on_it[0]} trains on it now: `trainrig logs {on_it[0]} -f` follows it" if on_it
           else "`trainrig ls` lists its trials")
    raise BadInput(f"run {record.run_id} is a machine of sweep {record.sweep}, lent to its trials, each a run of its "
                   f"own: {now}.")


def slot_id(spec: RunSpec, k: int) -> str:
    return names.run_id(spec.code_name, f"{spec.dataset_name}-s{k}")


def slot_spec(spec: RunSpec, k: int) -> RunSpec:
    return replace(spec, dataset_name=f"{spec.dataset_name}-s{k}")


async def _one(life: Lifecycle, spec: RunSpec, sweep: str, k: int) -> RunRecord:
    rid = slot_id(spec, k)
    if life.journal.exists(rid):
        old = life.journal.load(rid)
        if old.sweep == sweep and old.state == RunState.UP and not old.borrowed_from:
            await life._machine(old)  # left by a sweep process that was killed: reuse it (its server may need a restart)
            life.emit(Notice(f"slot {rid}: reusing its machine"))
            return life.journal.load(rid)
        if old.sweep == sweep and old.state != RunState.DESTROYED and not old.borrowed_from:
            life.emit(Notice(f"slot {rid} was left half made by an earlier sweep process: destroying it first"))
            await life.down(rid, discard_outputs=True, stop=True)
    return await life.up(slot_spec(spec, k), max_restarts=0, sweep=sweep)


async def provision(life: Lifecycle, spec: RunSpec, sweep: str, count: int) -> list[RunRecord]:
    """`count` slots at once; if one fails, those made are destroyed before the error goes on."""
    tasks = [asyncio.create_task(_one(life, spec, sweep, k)) for k in range(1, count + 1)]
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:  # interrupted: the slots already up go too (one being made cleans up itself)
        for t in tasks:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        await release(life, [r for r in done if isinstance(r, RunRecord)])
        raise
    made = [r for r in results if isinstance(r, RunRecord)]
    failed = [e for e in results if isinstance(e, BaseException)]
    if failed:
        await release(life, made)
        raise failed[0]
    return made


def left_slots(life: Lifecycle, sweep: str) -> list[RunRecord]:
    return [r for r in life.journal.all() if r.sweep == sweep and not r.borrowed_from and r.state != RunState.DESTROYED]


async def clear_left_trials(life: Lifecycle, sweep: str) -> None:
    """Trials a killed sweep process left on its machines (still training, perhaps): stopped and
    removed; the study already counts them as interrupted and asks their parameters again."""
    for r in life.journal.all():
        if r.sweep == sweep and r.borrowed_from and r.state != RunState.DESTROYED:
            life.emit(Notice(f"trial run {r.run_id} was left by an earlier sweep process: stopping and removing it"))
            await life.down(r.run_id, discard_outputs=True, stop=True)


async def release(life: Lifecycle, slots: list[RunRecord]) -> None:
    """Destroy every slot, each one tried even when another fails (the first failure is raised)."""
    done = await asyncio.gather(*(life.down(s.run_id, discard_outputs=True, stop=True) for s in slots),
                                return_exceptions=True)
    errors = [e for e in done if isinstance(e, BaseException)]
    if errors:
        raise errors[0]
