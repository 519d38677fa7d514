"""The trainrig terminal UI: every run at a glance, one run in depth, every action a key away.

The app holds each run's RunView (runner/run_view.py) and its recent log lines; a follower per live
run (one Lifecycle each, with its own event sink) keeps them current. Quitting cancels the
followers only: trainings run on their machines, and the next start picks every run up again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from textual import on, work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from infra.errors import TrainrigError
from runner.events import EngineLine, Event, LogChunk, Notice
from runner.journal import Journal, RunRecord
from runner.run_view import RunView
from runner.states import RunState
from tui.log_lines import LogLines
from tui.messages import JournalRead, OpenRun, RunAction, RunEvent, StacksRead
from tui.run_actions import RunActions
from tui.screens.runs import RunsScreen  # the first screen; the others are imported when first opened

if TYPE_CHECKING:
    from runner.lifecycle import Lifecycle

JOURNAL_S = 2.0  # the journal is read again this often (runs started from the command line appear)
RETRY_FOLLOW_S = 30.0  # a follower that failed is started again after this long at the earliest
ACTIVITY = 200


class TrainrigApp(RunActions, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "trainrig"

    def __init__(self, journal: Journal | None = None, outputs_root: Path = Path("outputs"),
                 views: list[RunView] | None = None, now: float | None = None,
                 logs: dict[str, bytes] | None = None) -> None:
        """`views`, `now` and `logs`: a fixed picture (snapshot tests): no journal, no followers, a
        stopped clock, each run's log as given."""
        super().__init__()
        self.live = views is None
        self.journal = (journal or Journal()) if self.live else None
        self.outputs_root = outputs_root
        self.views: dict[str, RunView] = {v.run_id: v for v in views or []}
        self._now = now
        self._lines: dict[str, LogLines] = {}
        self._activity: dict[str, LogLines] = {}
        self._following: set[str] = set()
        self._follow_failed: dict[str, float] = {}
        self.tunnels: dict[str, str] = {}
        self.stacks: dict[str, RunView] = {}  # the backend's stacks no run here knows of (`S`)
        for rid, data in (logs or {}).items():
            self.log_lines(rid).feed(0, data)

    # -- state the screens read ----------------------------------------------------------------------
    def now(self) -> float:
        return self._now if self._now is not None else time.time()

    def log_lines(self, run_id: str) -> LogLines:
        if run_id not in self._lines:
            from tui.screens.run import LOG_LINES

            mirror = self.journal.dir(run_id) / "ui" / "train.log" if self.journal else None
            self._lines[run_id] = LogLines(LOG_LINES, mirror)
        return self._lines[run_id]

    def activity(self, run_id: str) -> LogLines:
        """Pulumi's lines and the runner's notices about the run (the last ACTIVITY of them)."""
        return self._activity.setdefault(run_id, LogLines(ACTIVITY))

    def lifecycle(self, run_id: str) -> "Lifecycle":
        """One Lifecycle per call, its events tagged with the run they are about."""
        from runner.lifecycle import Lifecycle  # SSH and friends load after the first screen is drawn

        return Lifecycle(self.journal, on_event=lambda event: self.post_message(RunEvent(run_id, event)))

    # -- start-up and the journal ----------------------------------------------------------------------
    def on_load(self) -> None:
        if self.live:  # before the first screen is composed: it draws every run at once
            assert self.journal is not None
            self._records(self.journal.all(), follow=False)

    def get_default_screen(self) -> Screen:
        """The runs screen is the first and bottom one (no blank default screen drawn and left first)."""
        return RunsScreen()

    def on_mount(self) -> None:
        if self.live:
            for view in list(self.views.values()):
                if view.state == RunState.STARTED:
                    self.follow(view.run_id)
            self.set_interval(JOURNAL_S, self.reread_journal)

    @work(thread=True, exclusive=True, exit_on_error=False, group="journal")
    def reread_journal(self) -> None:
        if self.journal is not None:
            self.post_message(JournalRead(self.journal.all()))

    @on(JournalRead)
    def _journal_read(self, message: JournalRead) -> None:
        self._records(message.records)

    def _records(self, records: list[RunRecord], follow: bool = True) -> None:
        now = self.now()
        seen = set()
        for record in records:
            seen.add(record.run_id)
            old = self.views.get(record.run_id)
            self.views[record.run_id] = old.with_record(record, now) if old else RunView.from_record(record, now)
            if follow and record.state == RunState.STARTED:
                self.follow(record.run_id)
        for rid in [r for r in self.views if r not in seen]:
            del self.views[rid]  # removed from the journal by someone else

    @work(thread=True, exclusive=True, exit_on_error=False, group="stacks", name="pulumi stacks")
    def ask_stacks(self) -> None:
        from runner.lifecycle import Lifecycle

        self.post_message(StacksRead(Lifecycle(self.journal).unknown_stacks()))

    def action_ask_stacks(self) -> None:
        self.ask_stacks()

    @on(StacksRead)
    def _stacks_read(self, message: StacksRead) -> None:
        self.stacks = {n: RunView(run_id=n, target="stack", state="stack only") for n in message.names}
        self.notify(f"{len(message.names)} stack(s) in the Pulumi backend that no run here knows of"
                    + (": `pulumi destroy -s NAME` (after `eval \"$(trainrig pulumi-env)\"`) removes one" if message.names else ""))

    # -- following -------------------------------------------------------------------------------------
    def follow(self, run_id: str, again: bool = False) -> None:
        """Follow the run's log, metrics and telemetry (from the start: the screen shows them all)."""
        if not self.live or run_id in self._following:
            return
        if not again and time.monotonic() - self._follow_failed.get(run_id, -RETRY_FOLLOW_S) < RETRY_FOLLOW_S:
            return
        self._following.add(run_id)
        self.run_worker(self._follow(run_id), name=f"follow {run_id}", group=f"follow:{run_id}", exclusive=True,
                        exit_on_error=False, description="follow")

    async def _follow(self, run_id: str) -> None:
        from runner.follow import Offsets

        lines = self.log_lines(run_id)
        view = self.views.get(run_id)
        offsets = Offsets(log=lines.end, metrics=view.metrics_offset if view else 0,
                          telemetry=view.telemetry.offset if view else 0)
        try:
            await self.lifecycle(run_id).follow_run(run_id, offsets)
        except Exception:  # shown by the worker handler; not tried again at once
            self._follow_failed[run_id] = time.monotonic()
            raise
        finally:
            self._following.discard(run_id)
        self.reread_journal()

    @on(RunEvent)
    def _run_event(self, message: RunEvent) -> None:
        rid, event = message.run_id, message.event
        view = self.views.get(rid)
        if view is not None:
            self.views[rid] = view.apply(event)
        if isinstance(event, LogChunk):
            self.log_lines(rid).feed(event.offset, event.data)
        elif isinstance(event, (Notice, EngineLine)):
            self._note(rid, event)

    def _note(self, rid: str, event: Event) -> None:
        lines = self.activity(rid)  # Pulumi colours its lines: cleaned like the log's
        lines.feed(lines.end, event.text.encode("utf-8", "replace") + b"\n")  # type: ignore[union-attr]

    # -- screens and actions ---------------------------------------------------------------------------
    @on(OpenRun)
    def _open(self, message: OpenRun) -> None:
        view = self.views.get(message.run_id)
        if view is not None and view.state in (RunState.STARTED, RunState.FINISHED):
            self.follow(message.run_id)  # a finished run's follower shows all of it and ends
        elif view is not None and view.downloads and self.log_lines(view.run_id).end == 0:
            self._read_download(view.run_id, Path(view.downloads[-1]))
        from tui.screens.run import RunScreen

        self.push_screen(RunScreen(message.run_id))

    @work(thread=True, exit_on_error=False, group="downloads")
    def _read_download(self, run_id: str, folder: Path) -> None:
        """The machine is gone: the log and metrics as last downloaded."""
        from tui.downloaded import events_from_download

        for event in events_from_download(folder):
            self.post_message(RunEvent(run_id, event))

    @on(RunAction)
    def _act(self, message: RunAction) -> None:
        if not self.live:
            self.notify("this is a picture of runs, not the journal: nothing to do", severity="warning")
            return
        if message.run_id in self.stacks:
            self.notify(f"stack {message.run_id} is no run of this computer: `pulumi destroy -s {message.run_id}` "
                        "(after `eval \"$(trainrig pulumi-env)\"`) removes what it holds", severity="warning")
            return
        self.act_on_run(message.run_id, message.action)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_new_run(self) -> None:
        from tui.screens.new_run import NewRunScreen
        from tui.screens.run import RunScreen

        def chosen(spec) -> None:  # type: ignore[no-untyped-def]
            if spec is not None:
                self.run_worker(self.launch(spec), name=f"new run {spec.run_id}", group=f"act:{spec.run_id}",
                                exit_on_error=False, description="start")
                self.push_screen(RunScreen(spec.run_id))

        self.push_screen(NewRunScreen(), chosen)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """Every failed action or follower ends here: a readable notification, never a traceback."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, TrainrigError):
            text = str(error)
        else:
            text = f"unexpected {type(error).__name__}: {error}"
        self.notify(text, title=event.worker.name or "error", severity="error", timeout=15)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New run", "provision, upload and train", self.action_new_run)
        yield SystemCommand("Help", "the keys of every screen", self.action_help)
        yield SystemCommand("Ask the Pulumi backend for stacks", "stacks no run here knows of (may be billing)",
                            self.ask_stacks)
        from tui.screens.run import RunScreen  # the palette is open: the first screen is long drawn

        if isinstance(screen, RunScreen):  # a multi-node run's: whose log is shown
            for title, node in screen.node_choices():
                yield SystemCommand(title, "whose log this screen shows (n: the next)", lambda n=node: screen.show_node(n))
        for rid in list(self.views):
            yield SystemCommand(f"Open {rid}", "its log, metrics, telemetry", lambda r=rid: self.post_message(OpenRun(r)))
            for action in ("start", "stop", "download", "destroy", "shell", "tensorboard"):
                yield SystemCommand(f"{action.capitalize()} {rid}", f"{action} run {rid}",
                                    lambda r=rid, a=action: self.post_message(RunAction(r, a)))


def run_app(outputs_root: Path = Path("outputs")) -> None:
    TrainrigApp(outputs_root=outputs_root).run()
