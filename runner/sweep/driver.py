"""A whole sweep: the study opened (or resumed), `--parallel` slot machines up once, one worker per
slot asking Optuna for the next trial and running it there, and the slots destroyed at the end,
also after a failure or an interrupt (Ctrl-C, SIGTERM: the caller cancels this coroutine)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from runner.events import EventSink, Notice
from runner.journal import Journal, RunRecord
from runner.lifecycle import Lifecycle
from runner.sweep import slots as slot_machines
from runner.sweep.params import Value
from runner.sweep.study import (
    SweepConfig,
    forget_config,
    held,
    open_study,
    save_config,
    settle_interrupted,
    trials_used,
)
from runner.sweep.trials import (
    OUTPUTS_ATTR,
    RUN_ID_ATTR,
    TrialEnd,
    TrialResult,
    run_trial,
    trial_id,
)


@dataclass(frozen=True)
class BestTrial:
    number: int
    run_id: str
    value: float
    params: dict[str, Value]
    outputs: str  # the downloaded outputs' folder


@dataclass(frozen=True)
class SweepResult:
    name: str
    ran: tuple[TrialResult, ...]  # the trials this process ran, in the order they ended
    complete: int  # over the whole study, earlier processes' trials included
    pruned: int
    failed: int
    best: BestTrial | None
    interrupted_before: int = 0  # trials an earlier process left running, asked again here
    slots: tuple[str, ...] = field(default=())
    gave_up: bool = False  # the sweep's first FAIL_FAST trials all failed: no more were asked


FAIL_FAST = 3  # a sweep's first trials all failing (a misspelt --objective, a broken script) would fail every one


def _failing_from_the_start(study, ran: list[TrialResult]) -> bool:  # type: ignore[no-untyped-def]
    from optuna.trial import TrialState

    if len(ran) < FAIL_FAST or any(r.end != TrialEnd.FAILED for r in ran):
        return False
    return not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _summary(config: SweepConfig, study, ran: list[TrialResult], settled: int, slots: list[str],  # type: ignore[no-untyped-def]
             gave_up: bool = False) -> SweepResult:
    from optuna.trial import TrialState

    from runner.sweep.study import INTERRUPTED

    trials = study.get_trials(deepcopy=False)
    count = lambda s: sum(1 for t in trials if t.state == s and not t.user_attrs.get(INTERRUPTED))
    best = None
    if count(TrialState.COMPLETE):
        b = study.best_trial
        best = BestTrial(b.number, b.user_attrs.get(RUN_ID_ATTR, trial_id(config, b.number)), float(b.value),
                         dict(b.params), b.user_attrs.get(OUTPUTS_ATTR, ""))
    return SweepResult(config.name, tuple(ran), count(TrialState.COMPLETE), count(TrialState.PRUNED),
                       count(TrialState.FAIL), best, settled, tuple(slots), gave_up)


async def run_sweep(config: SweepConfig, on_event: EventSink, on_trial: Callable[[TrialResult], None],
                    journal: Journal | None = None, new: bool = False,
                    on_start: Callable[[], None] | None = None) -> SweepResult:
    """`new`: the sweep's file is written first, so an interrupt at any point leaves a sweep that
    `--resume` continues; a sweep refused before its machines are up (e.g. an unreachable host) has
    it removed again: nothing to resume, the same command starts it. `on_start`: called once the
    sweep is this process's (a refusal before that is its one sentence alone)."""
    journal = journal or Journal()
    with held(config.name, config.spec.run_id):
        if new:
            save_config(config)
        if on_start is not None:
            on_start()
        made: list[RunRecord] = []  # the slots, once up
        try:
            return await _run(config, on_event, on_trial, journal, made)
        except Exception:
            if new and not made:
                forget_config(config.name)
            raise


async def _run(config: SweepConfig, on_event: EventSink, on_trial: Callable[[TrialResult], None], journal: Journal,
               made: list[RunRecord]) -> SweepResult:
    study = await asyncio.to_thread(open_study, config)
    settled = settle_interrupted(study)
    if settled:
        on_event(Notice(f"sweep {config.name}: {settled} trial(s) an earlier process left unfinished are asked again"))
    remaining = config.trials - trials_used(study)
    ran: list[TrialResult] = []
    life = Lifecycle(journal, on_event)
    await slot_machines.clear_left_trials(life, config.name)  # a killed sweep's: stopped, their folders gone
    if remaining <= 0:
        await slot_machines.release(life, slot_machines.left_slots(life, config.name))
        return _summary(config, study, ran, settled, [])
    slots = await slot_machines.provision(life, config.spec, config.name, min(config.parallel, remaining))
    made += slots
    distributions = {p.name: p.distribution() for p in config.params}
    asked, gave_up = 0, False

    async def worker(slot: RunRecord) -> None:
        nonlocal asked, gave_up
        while asked < remaining and not gave_up:
            asked += 1  # no await between the check and here: one event loop, no race
            t0 = time.perf_counter()
            trial = study.ask(distributions)
            result = await run_trial(config, study, trial, slot, journal, on_event)
            result = replace(result, seconds=time.perf_counter() - t0)
            ran.append(result)
            on_trial(result)
            gave_up = gave_up or _failing_from_the_start(study, ran)

    tasks = [asyncio.create_task(worker(s)) for s in slots]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # each cancelled trial cleans up first
        await slot_machines.release(life, slots)  # nothing of the sweep keeps billing
    return _summary(config, study, ran, settled, [s.run_id for s in slots], gave_up)

