"""One run in depth: its live log, metric chart, telemetry, facts and timeline, and its actions."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Log

from tui.messages import RunAction
from tui.widgets.metric_chart import MetricChart
from tui.widgets.paged_log import PagedLog
from tui.widgets.run_facts import RunFacts
from tui.widgets.telemetry_panel import TelemetryPanel

LOG_LINES = 5000  # in the widget while live; the whole log stays on disk
LOG_PAGE = 5000  # lines paged in from disk at a time
LOG_WINDOW = 10000  # the most lines the widget holds while paging
FLUSH_S = 0.1  # lines are written in batches, ten times a second at most
PANELS_S = 0.5


class RunScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Runs"),
        Binding("s", "act('start')", "Start"),
        Binding("x", "act('stop')", "Stop"),
        Binding("d", "act('download')", "Download"),
        Binding("D", "act('destroy')", "Destroy"),
        Binding("e", "act('shell')", "Shell"),
        Binding("t", "act('tensorboard')", "TB"),
        Binding("m", "next_metric", "Metric", show=False),  # 80 columns: the help screen lists them
        Binding("l", "log_scale", "Log scale", show=False),
        Binding("question_mark", "app.help", "Help"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self._activity_shown = 0
        self._view = None
        self._pending = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield PagedLog(self.app.log_lines(self.run_id), LOG_LINES, LOG_PAGE, LOG_WINDOW, id="log")  # type: ignore[attr-defined]
                yield Label("", id="progress")
                yield MetricChart(id="chart")
            with VerticalScroll(id="right"):
                yield RunFacts(id="facts")
                yield TelemetryPanel(id="telemetry")
                yield Log(max_lines=200, id="activity")
        yield Footer()

    def on_mount(self) -> None:
        self.title, self.sub_title = "trainrig", self.run_id
        self.flush()
        self.panels()
        self.set_interval(FLUSH_S, self.flush)
        self.set_interval(PANELS_S, self.panels)

    def flush(self) -> None:
        lines = self.app.log_lines(self.run_id)  # type: ignore[attr-defined]
        self.query_one("#log", PagedLog).pull()
        if self._pending != lines.pending:
            self._pending = lines.pending
            self.query_one("#progress", Label).update(Text(lines.pending))  # tqdm writes [..]: no markup
        activity = self.app.activity(self.run_id)  # type: ignore[attr-defined]
        notes = activity.since(self._activity_shown)
        if notes:
            self.query_one("#activity", Log).write_lines(notes)
        self._activity_shown = activity.total

    def panels(self) -> None:
        view = self.app.views.get(self.run_id)  # type: ignore[attr-defined]
        if view is None:
            return
        self.query_one(RunFacts).show(view, self.app.now())  # type: ignore[attr-defined]
        if view is not self._view:
            self.query_one(MetricChart).show(view.series)
            self.query_one(TelemetryPanel).show(view.telemetry)
            self._view = view

    def action_act(self, action: str) -> None:
        self.post_message(RunAction(self.run_id, action))

    def action_next_metric(self) -> None:
        self.query_one(MetricChart).next_metric()

    def action_log_scale(self) -> None:
        self.query_one(MetricChart).toggle_log()
