"""Every run at a glance; rows are added, changed cell by cell, or removed, never refilled."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from runner.run_view import RunView
from runner.states import Outcome, RunState

COLUMNS = (("run", "RUN"), ("target", "TARGET"), ("machine", "MACHINE"), ("phase", "PHASE"),
           ("elapsed", "ELAPSED"), ("cost", "COST"), ("loss", "LOSS"), ("outputs", "OUTPUTS"))
GOOD, BAD, BUSY, IDLE = "green", "red", "yellow", "bright_black"


def phase_style(view: RunView) -> str:
    if view.outcome and view.state in (RunState.FINISHED, RunState.STARTED):
        return GOOD if view.outcome == Outcome.SUCCEEDED else BAD
    if view.state == RunState.DESTROYED:
        return IDLE
    if view.state in (RunState.PROVISIONING, RunState.DESTROYING) or view.run_state is None:  # a stack only
        return BUSY
    return "cyan" if view.state == RunState.STARTED else "blue"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def cells(view: RunView, now: float) -> tuple:
    """The row of one run; a run that holds resources is marked and bold (it may be billing)."""
    mark = "● " if view.holds_resources else "  "
    run = Text(mark + view.run_id, style="bold" if view.holds_resources else IDLE)
    # The host alone: 80 columns hold the row (the run screen has user and port).
    machine = view.accelerator or (view.machine.split("@")[-1].rsplit(":", 1)[0] if view.machine else "-")
    cost = "-" if view.cost_usd is None else f"${view.cost_usd:.2f}"
    loss = "-" if view.loss is None else f"{view.loss:.4g}"
    if view.downloaded:
        outputs = Text("yes", style=GOOD)
    elif view.outcome and view.holds_resources:
        outputs = Text("no", style=BUSY)  # still to download before destroying
    else:
        outputs = Text("-" if not view.downloads else "part", style=IDLE)
    return (run, view.target, machine, Text(view.phase, style=phase_style(view)),
            duration(view.elapsed_s(now)), cost, loss, outputs)


class RunsTable(DataTable):
    def __init__(self, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self._shown: dict[str, tuple] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, views: list[RunView], now: float, query: str = "") -> None:
        wanted = {v.run_id: v for v in views if query.lower() in f"{v.run_id} {v.target} {v.phase}".lower()}
        for rid in [r for r in self._shown if r not in wanted]:
            self.remove_row(rid)
            del self._shown[rid]
        for rid, view in wanted.items():
            row = cells(view, now)
            old = self._shown.get(rid)
            if old is None:
                self.add_row(*row, key=rid)
            else:
                for (key, _), new, was in zip(COLUMNS, row, old):
                    if _key(new) != _key(was):
                        self.update_cell(rid, key, new)
            self._shown[rid] = row

    @property
    def selected_run(self) -> str | None:
        if not self._shown or self.cursor_row < 0:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except CellDoesNotExist:
            return None


def _key(cell: object) -> object:
    """What a cell shows, its colour included (Text's own == ignores its style)."""
    return (cell.plain, str(cell.style)) if isinstance(cell, Text) else cell
