"""Every run at a glance; rows are added, changed cell by cell, or removed. A sweep's slot machines
and trials sit under a row of their own sweep, after the runs of no sweep (as `trainrig ls` groups
them); the rows are filled again only when a run appears out of that order (a new trial)."""

from __future__ import annotations

import re

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from runner.run_view import RunView
from runner.states import Outcome, RunState

COLUMNS = (("run", "RUN"), ("target", "TARGET"), ("machine", "MACHINE"), ("phase", "PHASE"),
           ("elapsed", "ELAPSED"), ("cost", "COST"), ("loss", "LOSS"), ("outputs", "OUTPUTS"))
GOOD, BAD, BUSY, IDLE = "green", "red", "yellow", "bright_black"
SWEEP_ROW = "sweep:"  # the key of a sweep's own row (no run id has a colon)
SLOT = re.compile(r"-s\d+$")  # a sweep's slot machine: runner/sweep/slots.py's `<code>-<dataset>-s<K>`


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
    run = Text(("  " if view.sweep else "") + mark + view.run_id, style="bold" if view.holds_resources else IDLE)
    # The host alone: 80 columns hold the row (the run screen has user and port, and every node's).
    machine = view.accelerator or (view.machine.split("@")[-1].rsplit(":", 1)[0] if view.machine else "-")
    if view.node_count > 1:
        machine = f"{view.node_count} nodes" + (f" {view.accelerator}" if view.accelerator else "")
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


def sweep_cells(name: str, members: list[RunView]) -> tuple:
    """A sweep's own row: its machines (slots holding one) and its trials."""
    slots = [v for v in members if SLOT.search(v.run_id)]
    machines = sum(1 for v in slots if v.machine)
    trials = len(members) - len(slots)
    targets = ",".join(sorted({v.target for v in members}))
    return (Text(f"▾ sweep {name}", style="bold magenta"), targets, f"{machines} slot{'' if machines == 1 else 's'}",
            Text(f"{trials} trial{'' if trials == 1 else 's'}", style="magenta"), "", "", "", "")


def _natural(run_id: str) -> tuple:
    """t2 before t10; a sweep's slots (-sK) before its trials (-tN)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", run_id))


def rows(views: list[RunView], now: float, query: str = "") -> list[tuple[str, tuple]]:
    """(row key, cells) in the order shown: the runs of no sweep as they come, then each sweep's row
    followed by its slots and trials."""
    q = query.lower()
    wanted = [v for v in views if q in f"{v.run_id} {v.target} {v.phase} {v.sweep}".lower()]
    out = [(v.run_id, cells(v, now)) for v in wanted if not v.sweep]
    groups: dict[str, list[RunView]] = {}
    for v in wanted:
        if v.sweep:
            groups.setdefault(v.sweep, []).append(v)
    for name in sorted(groups):
        members = sorted(groups[name], key=lambda v: _natural(v.run_id))
        out.append((SWEEP_ROW + name, sweep_cells(name, members)))
        out.extend((v.run_id, cells(v, now)) for v in members)
    return out


def sweep_of(row_key: str) -> str | None:
    """The sweep whose own row this is; None for a run's row."""
    return row_key[len(SWEEP_ROW):] if row_key.startswith(SWEEP_ROW) else None


class RunsTable(DataTable):
    def __init__(self, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self._shown: dict[str, tuple] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, views: list[RunView], now: float, query: str = "") -> None:
        wanted = dict(rows(views, now, query))
        for rid in [r for r in self._shown if r not in wanted]:
            self.remove_row(rid)
            del self._shown[rid]
        if list(self._shown) + [r for r in wanted if r not in self._shown] != list(wanted):
            self._refill(wanted)  # a row belongs between others (a sweep's new trial): DataTable only appends
            return
        for rid, row in wanted.items():
            old = self._shown.get(rid)
            if old is None:
                self.add_row(*row, key=rid)
            else:
                for (key, _), new, was in zip(COLUMNS, row, old):
                    if _key(new) != _key(was):
                        self.update_cell(rid, key, new)
            self._shown[rid] = row

    def _refill(self, wanted: dict[str, tuple]) -> None:
        selected = self.selected_row
        self.clear()
        for rid, row in wanted.items():
            self.add_row(*row, key=rid)
        self._shown = dict(wanted)
        if selected in wanted:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    @property
    def selected_row(self) -> str | None:
        """The key of the row under the cursor: a run id, or a sweep's own row (sweep_of)."""
        if not self._shown or self.cursor_row < 0:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except CellDoesNotExist:
            return None

    @property
    def selected_run(self) -> str | None:
        key = self.selected_row
        return None if key is None or sweep_of(key) is not None else key


def _key(cell: object) -> object:
    """What a cell shows, its colour included (Text's own == ignores its style)."""
    return (cell.plain, str(cell.style)) if isinstance(cell, Text) else cell
