"""A sweep's Optuna study and its settings, under the trainrig home: `<state>/sweeps/<name>/`
holds sweep.json (what `trainrig sweep` was given, so `--resume NAME` needs nothing else),
study.journal (Optuna's JournalStorage on a JournalFileBackend: every ask, report and tell,
appended and safe to share between processes) and a lock held while a sweep process works on it.

Pruner: Optuna's MedianPruner, after PRUNE_STARTUP_TRIALS complete trials (a trial is stopped at
a step where its objective is worse than the median of the complete trials' at that step).
Sampler: Optuna's TPESampler (random for its first trials), seeded with --seed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.spec import RunSpec
from runner.errors import BadInput
from runner.locks import exclusive
from runner.sweep.params import Direction, Objective, Param, parse_param
from runner.workspace import state_dir

PRUNE_STARTUP_TRIALS = 2
INTERRUPTED = "interrupted"  # user attribute of a trial whose sweep process ended while it ran


@dataclass(frozen=True)
class SweepConfig:
    name: str
    spec: RunSpec  # the trials' common spec (its run id names the slots' and trials' ids)
    params: tuple[Param, ...]
    objective: Objective
    trials: int
    parallel: int
    outputs: str  # where each trial's outputs are downloaded
    seed: int | None = None
    prune: bool = True

    def to_dict(self) -> dict:
        return {"name": self.name, "spec": self.spec.to_dict(), "params": [p.to_text() for p in self.params],
                "objective": str(self.objective), "trials": self.trials, "parallel": self.parallel,
                "outputs": self.outputs, "seed": self.seed, "prune": self.prune}

    @classmethod
    def from_dict(cls, d: dict) -> SweepConfig:
        metric, _, how = d["objective"].rpartition(":")
        return cls(name=d["name"], spec=RunSpec.from_dict(d["spec"]), params=tuple(parse_param(p) for p in d["params"]),
                   objective=Objective(metric, Direction(how)), trials=d["trials"], parallel=d["parallel"],
                   outputs=d["outputs"], seed=d.get("seed"), prune=d.get("prune", True))


def sweeps_dir() -> Path:
    return state_dir() / "sweeps"


def sweep_dir(name: str) -> Path:
    return sweeps_dir() / name


def journal_path(name: str) -> Path:
    return sweep_dir(name) / "study.journal"


def known_sweeps() -> list[str]:
    root = sweeps_dir()
    return sorted(p.name for p in root.iterdir() if (p / "sweep.json").is_file()) if root.is_dir() else []


def save_config(config: SweepConfig) -> None:
    d = sweep_dir(config.name)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = d / "sweep.json.tmp"
    tmp.write_text(json.dumps(config.to_dict(), indent=1))
    os.replace(tmp, d / "sweep.json")


def forget_config(name: str) -> None:
    (sweep_dir(name) / "sweep.json").unlink(missing_ok=True)


def load_config(name: str) -> SweepConfig:
    path = sweep_dir(name) / "sweep.json"
    if not path.is_file():
        known = ", ".join(known_sweeps()) or "none yet"
        raise BadInput(f"there is no sweep {name!r} to resume (known sweeps: {known}); start it with `trainrig sweep CODE ...`.")
    return SweepConfig.from_dict(json.loads(path.read_text()))


_HELD_HERE: set[str] = set()  # the sweeps this process runs (its own `down`s of their runs go ahead)


@contextmanager
def held(name: str, run_id: str) -> Iterator[None]:
    """One sweep process per sweep: a second (or a --resume while it runs) is refused, not queued;
    so is a sweep of another name over the same code and dataset, whose trial ids would be the same."""
    with exclusive(sweep_dir(name) / "lock", f"sweep {name} is running in another trainrig process right now; wait for it to end."):
        with exclusive(sweeps_dir() / ".by-run" / f"{run_id}.lock",
                       f"another sweep over {run_id} is running right now (its trials are named {run_id}-t<N> too); "
                       "wait for it to end."):
            (sweep_dir(name) / "pid").write_text(str(os.getpid()))
            _HELD_HERE.add(name)
            try:
                yield
            finally:
                _HELD_HERE.discard(name)


def _running_pid(name: str) -> int | None:
    """The pid of another process running sweep `name` now (its lock is held), else None."""
    import fcntl

    lock = sweep_dir(name) / "lock"
    if name in _HELD_HERE or not lock.is_file():
        return None
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        try:
            return int((sweep_dir(name) / "pid").read_text())
        except (OSError, ValueError):
            return 0
    finally:
        os.close(fd)  # (the lock, if taken here, goes with it)


def refuse_while_running(run_id: str, sweep: str, trial: bool) -> None:
    """`down` of a sweep's slot or trial while its sweep process runs: refused before anything changes
    (the sweep would lend the destroyed machine to its next trials, failing each); the way out."""
    pid = _running_pid(sweep)
    if pid is None:
        return
    kill = f"`kill {pid}` ends" if pid else "interrupting its process (Ctrl-C) ends"
    early = f"; `trainrig stop {run_id}` ends just this trial early" if trial else ""
    raise BadInput(f"run {run_id} is a {'trial' if trial else 'machine'} of sweep {sweep}, which is running: {kill} "
                   f"the sweep and destroys its machines (`trainrig sweep --resume {sweep}` continues it){early}.")


def open_study(config: SweepConfig):  # type: ignore[no-untyped-def]
    """The sweep's study, made or loaded from its journal file."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trainrig prints its own lines
    storage = JournalStorage(JournalFileBackend(str(journal_path(config.name))))
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS) if config.prune
              else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=config.name, storage=storage, load_if_exists=True,
                                direction=config.objective.optuna_direction(),
                                sampler=optuna.samplers.TPESampler(seed=config.seed), pruner=pruner)
    asked = len(study.get_trials(deepcopy=False))
    if asked and config.seed is not None:  # resumed: a sampler seeded as before would draw the first trials' parameters again
        study.sampler = optuna.samplers.TPESampler(seed=config.seed + asked)
    return study


def settle_interrupted(study) -> int:  # type: ignore[no-untyped-def]
    """Trials left RUNNING by a sweep process that ended (Ctrl-C, a kill, a crash) are told FAIL and
    marked interrupted, and their parameters asked again first; returns how many there were."""
    import optuna
    from optuna.trial import TrialState

    left = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in left:
        optuna.trial.Trial(study, t._trial_id).set_user_attr(INTERRUPTED, True)
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(dict(t.params), skip_if_exists=False)
    return len(left)


def trials_used(study) -> int:  # type: ignore[no-untyped-def]
    """The trials that count against --trials: every finished one but those an interrupt ended."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in study.get_trials(deepcopy=False, states=done) if not t.user_attrs.get(INTERRUPTED))
