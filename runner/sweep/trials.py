"""One trial: a run of its own (`<code>-<dataset>-t<N>`, its own record and run folder) on a slot's
borrowed machine. Its parameters go in as `--name value` arguments and TRAINRIG_PARAM_<NAME>
variables; the objective's points from the metrics stream (trainrig_helpers.log_metrics) are
reported to Optuna as they arrive, and a trial the pruner gives up on is stopped there. Its outputs
are downloaded and its folder on the machine removed before Optuna is told how it ended, so a
trial the study calls finished always has its outputs home."""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from infra import names
from infra.spec import EntryPoint
from runner.cost import epoch
from runner.errors import TrainrigError
from runner.events import Event, EventSink, MetricPoint, Notice
from runner.journal import Journal, RunRecord
from runner.lifecycle import Lifecycle
from runner.remote.status import Status
from runner.states import MachinePhase, Outcome, RunState
from runner.sweep.params import Value, trial_arguments, trial_env
from runner.sweep.study import SweepConfig

RUN_ID_ATTR, OUTPUTS_ATTR = "run_id", "outputs"  # the trial's user attributes in the study


class TrialEnd(str, Enum):
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


@dataclass(frozen=True)
class TrialResult:
    number: int
    run_id: str
    params: dict[str, Value]
    end: TrialEnd
    value: float | None  # the objective's last point (None: none was logged)
    outputs: Path | None
    reason: str = ""
    seconds: float = 0.0  # the whole trial: ask, start, follow, download, folder removed, tell
    training_s: float | None = None  # the training process alone (the machine's phases)


def training_seconds(status: Status | None) -> float | None:
    """How long the training process itself ran: from the machine's `training` phase to the next."""
    phases = status.phases if status is not None else []
    for (phase, at), (_, after) in itertools.pairwise(phases):
        if phase == MachinePhase.TRAINING:
            return epoch(after) - epoch(at)
    return None


def trial_id(config: SweepConfig, number: int) -> str:
    return names.run_id(config.spec.code_name, f"{config.spec.dataset_name}-t{number}")


def trial_record(config: SweepConfig, number: int, params: dict[str, Value], slot: RunRecord) -> RunRecord:
    base = config.spec
    spec = replace(base, dataset_name=f"{base.dataset_name}-t{number}",
                   entry=EntryPoint(module=base.entry.module, command=base.entry.command,
                                    args=base.entry.args + trial_arguments(params)),
                   env=base.env + trial_env(params))
    record = RunRecord(spec=spec, state=RunState.UP, machine=slot.machine, sweep=config.name, borrowed_from=slot.run_id)
    record.mark(RunState.UP)
    return record


class _Watcher:
    """The trial's event sink: objective points to Optuna, the rest to the sweep's sink."""

    def __init__(self, trial, metric: str, forward: EventSink):  # type: ignore[no-untyped-def]
        self.trial, self.metric, self.forward = trial, metric, forward
        self.last: float | None = None
        self.pruned_at: int | None = None
        self.stop_asked: asyncio.Event = asyncio.Event()
        self.seen: set[str] = set()  # every metric the training logged (a misspelt --objective is named)

    def __call__(self, event: Event) -> None:
        if isinstance(event, MetricPoint):
            self.seen.update(event.values)
            value = event.values.get(self.metric)
            if isinstance(value, (int, float)) and self.pruned_at is None:
                self.last = float(value)
                if math.isfinite(value):
                    self.trial.report(float(value), event.step)
                    if self.trial.should_prune():
                        self.pruned_at = event.step
                        self.stop_asked.set()
            return
        self.forward(event)


async def run_trial(config: SweepConfig, study, trial, slot: RunRecord, journal: Journal,  # type: ignore[no-untyped-def]
                    forward: EventSink) -> TrialResult:
    params = dict(trial.params)
    rid = trial_id(config, trial.number)
    trial.set_user_attr(RUN_ID_ATTR, rid)
    with journal.lock(rid, "sweep"):
        if journal.exists(rid) and journal.load(rid).state != RunState.DESTROYED:
            raise TrainrigError(f"run {rid} already exists and holds its machine: `trainrig down {rid} --stop "
                                f"--discard-outputs` removes it, then resume the sweep.")
        journal.save(trial_record(config, trial.number, params, slot))
    watcher = _Watcher(trial, config.objective.metric, forward)
    life = Lifecycle(journal, on_event=watcher)
    status: Status | None = None
    reason, folder = "", None
    stopper = asyncio.create_task(_stop_when_asked(life, rid, watcher))
    try:
        try:
            status = await life.start(rid, follow_log=True)
        finally:
            stopper.cancel()
            await asyncio.gather(stopper, return_exceptions=True)
        folder = await life.download(rid, Path(config.outputs))
        await life.down(rid)
    except Exception as e:  # a failed trial never stops the sweep: Optuna is told FAIL
        reason = str(e) if isinstance(e, TrainrigError) else f"{type(e).__name__}: {e}"
        forward(Notice(f"trial {trial.number} ({rid}) failed: {reason}"))
        await _down_anyway(life, rid, forward)
    except BaseException:  # interrupted: nothing of it stays on the machine; the study keeps it RUNNING
        await _down_anyway(life, rid, forward)  # (--resume tells it FAIL and asks its parameters again)
        raise
    if folder is not None:
        trial.set_user_attr(OUTPUTS_ATTR, str(folder))
    return _tell(study, trial, rid, params, watcher, status, folder, reason)


async def _stop_when_asked(life: Lifecycle, rid: str, watcher: _Watcher) -> None:
    await watcher.stop_asked.wait()
    await life.stop(rid)


async def _down_anyway(life: Lifecycle, rid: str, forward: EventSink) -> None:
    try:
        await life.down(rid, discard_outputs=True, stop=True)
    except TrainrigError as e:
        forward(Notice(f"could not remove run {rid} from its slot's machine ({e}); the slot's `down` will"))


def _tell(study, trial, rid: str, params: dict[str, Value], watcher: _Watcher,  # type: ignore[no-untyped-def]
          status: Status | None, folder: Path | None, reason: str) -> TrialResult:
    from optuna.trial import TrialState

    took = training_seconds(status)
    if watcher.pruned_at is not None and not reason:
        study.tell(trial, state=TrialState.PRUNED)
        return TrialResult(trial.number, rid, params, TrialEnd.PRUNED, watcher.last, folder,
                           f"pruned at step {watcher.pruned_at}", training_s=took)
    ok = status is not None and status.outcome == Outcome.SUCCEEDED and status.final_sync_ok is not False
    if ok and watcher.last is not None and math.isfinite(watcher.last) and not reason:
        study.tell(trial, watcher.last)
        return TrialResult(trial.number, rid, params, TrialEnd.COMPLETE, watcher.last, folder, training_s=took)
    if not reason:
        reason = (f"the training {status.outcome}: {status.reason}" if status is not None and not ok
                  else f"the training logged no finite {watcher.metric} (trainrig_helpers.log_metrics)"
                  + (f"; it logged {', '.join(sorted(watcher.seen))}" if watcher.seen - {watcher.metric} else ""))
    study.tell(trial, state=TrialState.FAIL)
    return TrialResult(trial.number, rid, params, TrialEnd.FAILED, watcher.last, folder, reason, training_s=took)
