"""What a run's end means for whoever started or followed it: the exit code and the sentences to
tell (the command line prints them, the UI shows them), decided once for both."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from runner.errors import TrainrigError
from runner.journal import Journal, RunRecord
from runner.remote.status import Status
from runner.states import Outcome, RunState

EXIT_OK, EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class OutcomeReport:
    exit_code: int
    lines: tuple[str, ...] = ()  # for a person, first line first; empty when all went well
    again: str = ""  # the command that tries once more after a fix, when there is one


def report(status: Status | None, again: str) -> OutcomeReport:
    """`again`: the command that tries once more after a fix (after `run` destroyed the machine it is
    `trainrig run RUN`, else `trainrig start RUN`). Never exit 0 when outputs stayed on the machine
    only, whatever the training's own outcome."""
    if status is None:
        return OutcomeReport(EXIT_OK)
    lines: list[str] = []
    if status.final_sync_ok is False:
        lines.append(f"error: the final sync of outputs did not finish: {status.sync_error or 'no reason recorded'}")
    if status.outcome == Outcome.SUCCEEDED:
        return OutcomeReport(EXIT_FAILED if lines else EXIT_OK, tuple(lines))
    if status.outcome == Outcome.INSTALL_FAILED:
        # The run's failure (exit 1), not bad input: the machine was made and the step ran.
        lines.append(f"error: {status.reason}; its last lines (logs/install.log):")
        lines += [f"    | {line}" for line in status.install_tail]
        lines.append(f"fix the requirements.txt or the install script, then `{again}`.")
        return OutcomeReport(EXIT_FAILED, tuple(lines), again)
    lines.append(f"error: the run {status.outcome}: {status.reason}")
    return OutcomeReport(EXIT_FAILED, tuple(lines))


def ls_row(r: RunRecord) -> dict:
    """A run as `trainrig ls --json` (and `status --json`'s cost) shows it."""
    from runner.cost import cost_so_far

    cost = cost_so_far(r)
    return {"run_id": r.run_id, "state": r.state, "target": r.spec.target, "outcome": r.outcome,
            "exit_code": r.exit_code, "created_at": r.created_at,
            "machine": r.machine.address if r.machine else None, "downloads": r.downloads,
            "hourly_usd": r.stack.hourly_price if r.stack else None,
            "cost_usd_at_most": round(cost, 2) if cost is not None else None,
            "max_restarts": r.max_restarts, "restarts": [asdict(x) for x in r.restarts],
            "sweep": r.sweep, "borrowed_from": r.borrowed_from}


def grouped_by_sweep(records: list[RunRecord]) -> list[RunRecord]:
    """Runs of no sweep first, then each sweep's slots and trials together (`trainrig ls`)."""
    import re

    # Numbers in ids compared as numbers: trial t2 before t10.
    return sorted(records, key=lambda r: (r.sweep, [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", r.run_id)]))


def after_interrupt(journal: Journal, run_id: str) -> str:
    """What to do after a command was interrupted (Ctrl-C) while not following a training: a run
    caught half made or half destroyed holds what it made so far until `down` (every other command
    refuses it), anything else stays as it was."""
    try:
        state = journal.load(run_id).state if run_id and journal.exists(run_id) else None
    except TrainrigError:
        state = None
    if state in (RunState.PROVISIONING, RunState.DESTROYING):
        return f"interrupted while run {run_id} was {state}: `trainrig down {run_id}` removes what it made so far."
    return "interrupted: what was done so far stays; `trainrig ls` shows the runs."
