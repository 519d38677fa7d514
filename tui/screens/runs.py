"""The first screen: every run of the journal, the ones holding resources marked."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label

from tui.messages import OpenRun, RunAction
from tui.widgets.runs_table import RunsTable, sweep_of

REFRESH_S = 1.0


class RunsScreen(Screen[None]):
    AUTO_FOCUS = "#runs"  # focused as the screen starts: a focus set later redraws the footer again
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("n", "new_run", "New run"),
        Binding("s", "act('start')", "Start"),
        Binding("x", "act('stop')", "Stop"),
        Binding("d", "act('download')", "Download"),
        Binding("D", "act('destroy')", "Destroy"),
        Binding("S", "app.ask_stacks", "Stacks", show=False),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: part of a run id, a target, a phase or a sweep", id="filter")
        yield RunsTable(id="runs")
        yield Label("", id="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "trainrig"
        self.sub_title = "runs"
        self.redraw()
        self.set_interval(REFRESH_S, self.redraw)

    def redraw(self) -> None:
        views = list(self.app.views.values()) + list(self.app.stacks.values())  # type: ignore[attr-defined]
        query = self.query_one("#filter", Input).value.strip()
        self.query_one(RunsTable).show(views, self.app.now(), query)  # type: ignore[attr-defined]
        holding = [v for v in views if v.holds_resources]
        cost = sum(v.cost_usd or 0 for v in holding)
        text = f"{len(views)} run{'' if len(views) == 1 else 's'}, {len(holding)} holding resources" + (f", ${cost:.2f} so far" if cost else "")
        if not views:
            text = "no runs yet: press n for a new one (or `trainrig run` on the command line)"
        self.query_one("#summary", Label).update(text)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.query_one(RunsTable).focus()
        self.redraw()

    @on(Input.Changed, "#filter")
    def _filtered(self) -> None:
        self.redraw()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(RunsTable).focus()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        sweep = sweep_of(key)
        if sweep is None:
            self.post_message(OpenRun(key))
            return
        box = self.query_one("#filter", Input)  # a sweep's own row: its runs alone (escape shows all again)
        box.value = sweep
        box.add_class("shown")

    def action_new_run(self) -> None:
        self.app.action_new_run()  # type: ignore[attr-defined]

    def action_act(self, action: str) -> None:
        rid = self.query_one(RunsTable).selected_run
        if rid is None:
            self.notify("no run selected (a sweep's row: choose one of its runs)", severity="warning")
            return
        self.post_message(RunAction(rid, action))
