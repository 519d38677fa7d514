"""Prints the runner's events for a person: phases and notices on stderr, the training log on stdout."""

from __future__ import annotations

import os
import sys
import time

from runner.events import EngineLine, Event, LogChunk, Notice, PhaseChanged, Progress, StatusChanged
from runner.units import human_size


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
        self.run_id = ""
        self.following = False  # set once the training's status arrives: Ctrl-C then only stops following
        self.last_offset = 0
        self.tty = sys.stderr.isatty()
        self._bar_open = False
        self._bar_start: dict[str, float] = {}
        self._last_draw = 0.0

    def say(self, text: str) -> None:
        """One line for the person on stderr (closes an open progress bar first)."""
        if self._bar_open:
            sys.stderr.write("\n")
            self._bar_open = False
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, PhaseChanged):
            if event.phase in ("collecting", "destroying"):
                self.following = False  # an interrupt now interrupts this, not a follower
            elapsed = time.monotonic() - self.t0
            detail = f"  {event.detail}" if event.detail else ""
            self.say(f"==> [{elapsed:6.1f}s] {event.phase}{detail}")
        elif isinstance(event, LogChunk):
            self.following = True
            self.last_offset = event.offset + len(event.data)
            if not self.quiet_log:
                if self._bar_open:
                    self.say("")
                try:
                    sys.stdout.buffer.write(event.data)
                    sys.stdout.buffer.flush()
                except BrokenPipeError as e:
                    _drop_stdout()
                    raise ReaderGone() from e
        elif isinstance(event, StatusChanged):
            self.following = True
        elif isinstance(event, Notice):
            self.say(f"    {event.text}")
        elif isinstance(event, EngineLine):
            if event.text.strip():
                self.say(f"    pulumi | {event.text}")
        elif isinstance(event, Progress):
            self._progress(event)

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
