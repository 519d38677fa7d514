"""One run in depth: its live log, metric chart, telemetry, facts and timeline, and its actions.

A multi-node run's log is rank 0's (the app follows it); `n` shows node 1, 2 ... then every node's
interleaved (`[K] ` before each line), then rank 0's again. Those come from the runner's reading API
(follow_logs with node=), each followed by a worker of its own while it is shown."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Log

from runner.events import LogChunk
from runner.nodes import ALL
from tui.log_lines import LogLines
from tui.messages import NodeLog, RunAction
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
        Binding("n", "next_node", "Node"),  # multi-node runs only (check_action)
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
        self.node: int | str = 0  # whose log is shown: rank K, or "all"
        self._node_count = 1
        self._token = 0  # the node log being followed now (a replaced follower's late chunks are dropped)

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
        log = self.query_one("#log", PagedLog)
        lines = log.source
        log.pull()
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
        if view.node_count != self._node_count:
            self._node_count = view.node_count
            self.refresh_bindings()  # the node key shows for a multi-node run only
            self.query_one("#log", PagedLog).border_title = _whose(self.node) if self._node_count > 1 else ""
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

    # -- a multi-node run's nodes ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_node", "show_node"):
            return self._node_count > 1
        return True

    def node_choices(self) -> list[tuple[str, int | str]]:
        """(what the command palette says, node) for each log this run has; [] for one machine."""
        if self._node_count < 2:
            return []
        return ([(f"Show node {k}'s log of {self.run_id}", k) for k in range(self._node_count)]
                + [(f"Show every node's log of {self.run_id}, interleaved", ALL)])

    def action_next_node(self) -> None:
        order = [k for _, k in self.node_choices()]
        if order:
            self.show_node(order[(order.index(self.node) + 1) % len(order)] if self.node in order else 0)

    def show_node(self, node: int | str) -> None:
        """Show rank `node`'s log (0: the one the app follows), or every node's ("all")."""
        self.node, self._token = node, self._token + 1
        self.app.workers.cancel_group(self.app, self._group)
        log = self.query_one("#log", PagedLog)
        if node == 0:
            source = self.app.log_lines(self.run_id)  # type: ignore[attr-defined]
        elif not self.app.live:  # type: ignore[attr-defined]
            self.notify("this is a picture of runs, not the journal: no node to read", severity="warning")
            source = LogLines(LOG_LINES)
        else:
            source = LogLines(LOG_LINES, self._mirror(node))
            self.app.run_worker(self._follow_node(node, self._token), name=f"{self.run_id}: {_whose(node)}",
                                group=self._group, exclusive=True, exit_on_error=False, description="node log")
        log.source = source
        log.live()
        log.border_title = _whose(node)
        self._pending = "\0"  # the progress line is drawn again, from the new source

    @property
    def _group(self) -> str:
        return f"node log:{self.run_id}"

    def _mirror(self, node: int | str):  # type: ignore[no-untyped-def]
        """This log on disk for paging, begun afresh: its follower reads the node's log from the start."""
        path = self.app.journal.dir(self.run_id) / "ui" / f"train-node-{node}.log"  # type: ignore[attr-defined]
        path.unlink(missing_ok=True)
        return path

    async def _follow_node(self, node: int | str, token: int) -> None:
        from runner.lifecycle import Lifecycle

        def on_event(event) -> None:  # type: ignore[no-untyped-def]
            if isinstance(event, LogChunk):
                self.post_message(NodeLog(token, event))

        await Lifecycle(self.app.journal, on_event=on_event).follow_logs(self.run_id, node=node)  # type: ignore[attr-defined]

    def on_node_log(self, message: NodeLog) -> None:
        if message.token != self._token:
            return
        source = self.query_one("#log", PagedLog).source
        # One node's chunks carry its log's offsets; the interleaved stream has none of its own.
        source.feed(source.end if self.node == ALL else message.chunk.offset, message.chunk.data)

    def on_unmount(self) -> None:
        self.app.workers.cancel_group(self.app, self._group)


def _whose(node: int | str) -> str:
    return "every node's log ([K] node K)" if node == ALL else f"node {node}'s log"
