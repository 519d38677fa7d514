"""Prints the runner's events for a person: phases and notices on stderr, the training log on stdout.

What it knows of the run (its id, the phases so far, how far the log went, whether the training is
being followed, the latest transfer progress) is a RunView folded from the same events the UI folds
(runner/run_view.py); it keeps only what drawing on a terminal needs besides (clock, progress bar)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

from runner.events import EngineLine, Event, LogChunk, Notice, PhaseChanged, Progress
from runner.run_view import RunView
from runner.states import ClientPhase
from runner.units import human_size

# Once this computer collects outputs or destroys, an interrupt stops that work, not a follower.
_NOT_FOLLOWING = (ClientPhase.COLLECTING, ClientPhase.DESTROYING, ClientPhase.DESTROYED)


class ReaderGone(Exception):
    """The reader of the training's log on stdout went away (`trainrig run ... | head`): stop
    following quietly; the training goes on."""


def _drop_stdout() -> None:
    """Later writes (and the interpreter's flush at exit) go nowhere instead of failing again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class Console:
    def __init__(self, quiet_log: bool = False):
        self.t0 = time.monotonic()
        self.quiet_log = quiet_log
        # The command line reads no journal to print: the record's part of the view stays empty.
        self.view = RunView(run_id="", target="", state="")
        self.tty = sys.stderr.isatty()
        self._bar_open = False
        self._bar_start: dict[str, float] = {}
        self._last_draw = 0.0

    @property
    def run_id(self) -> str:
        return self.view.run_id

    @run_id.setter
    def run_id(self, run_id: str) -> None:
        self.view = replace(self.view, run_id=run_id)

    @property
    def following(self) -> bool:
        """The training's status or log has come and this computer has not moved on to collecting or
        destroying since: Ctrl-C then only stops following."""
        if self.view.status is None and not self.view.log_offset:
            return False
        ours = [s.phase for s in self.view.timeline if not s.on_machine]
        return not ours or ours[-1] not in _NOT_FOLLOWING

    @property
    def last_offset(self) -> int:
        return self.view.log_offset

    def say(self, text: str) -> None:
        """One line for the person on stderr (closes an open progress bar first)."""
        if self._bar_open:
            sys.stderr.write("\n")
            self._bar_open = False
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def __call__(self, event: Event) -> None:
        before, self.view = self.view, self.view.apply(event)
        if isinstance(event, PhaseChanged):
            if self.view.timeline == before.timeline:
                return  # the view's timeline has this phase already (said again): printed once
            elapsed = time.monotonic() - self.t0
            detail = f"  {event.detail}" if event.detail else ""
            self.say(f"==> [{elapsed:6.1f}s] {self.view.timeline[-1].phase}{detail}")
        elif isinstance(event, LogChunk):
            # Every chunk as it comes: after a restart the log goes on from where the restored file
            # ends, which may be before the furthest offset shown (lines the lost machine never synced).
            if not self.quiet_log:
                if self._bar_open:
                    self.say("")
                try:
                    sys.stdout.buffer.write(event.data)
                    sys.stdout.buffer.flush()
                except BrokenPipeError as e:
                    _drop_stdout()
                    raise ReaderGone() from e
        elif isinstance(event, Notice):
            self.say(f"    {event.text}")
        elif isinstance(event, EngineLine):
            if event.text.strip():
                self.say(f"    pulumi | {event.text}")
        elif isinstance(event, Progress) and self.view.progress is not None:
            self._progress(self.view.progress)

    def end_progress(self) -> None:
        if self._bar_open:
            sys.stderr.write("\n")
            self._bar_open = False

    def _progress(self, p: Progress) -> None:
        start = self._bar_start.setdefault(p.label, time.monotonic())
        rate = p.bytes_done / max(time.monotonic() - start, 1e-3)
        if not p.bytes_total:  # a streamed sync: the total is not known in advance
            if self.tty and time.monotonic() - self._last_draw > 0.1:
                self._last_draw = time.monotonic()
                sys.stderr.write(f"\r    {p.label:8} {human_size(p.bytes_done)} {p.files_total} files {human_size(rate)}/s ")
                sys.stderr.flush()
                self._bar_open = True
            return
        frac = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        line = f"    {p.label:8} [{bar}] {frac:4.0%} {human_size(p.bytes_done)}/{human_size(p.bytes_total)} {p.files_total} files {human_size(rate)}/s"
        if self.tty:
            sys.stderr.write("\r" + line)
            self._bar_open = p.bytes_done < p.bytes_total
            if not self._bar_open:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif p.bytes_done >= p.bytes_total:
            self.say(line)
