"""The machine's CPU, memory and GPU use as sparklines over a rolling window."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from runner.run_view import Telemetry

WINDOW = 60  # samples drawn (the supervisor samples every few seconds)
ROWS = (("cpu", "cpu"), ("memory", "mem"), ("gpu", "gpu"), ("gpu_memory", "gmem"))


class TelemetryPanel(Vertical):
    DEFAULT_CSS = """
    TelemetryPanel { height: auto; }
    TelemetryPanel Horizontal { height: 1; }
    TelemetryPanel Label { width: 10; }
    TelemetryPanel Sparkline { width: 1fr; }
    """

    def __init__(self, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self._shown: Telemetry | None = None

    def compose(self) -> ComposeResult:
        for key, name in ROWS:
            with Horizontal(id=f"t-{key}"):
                yield Label(f"{name} -", id=f"l-{key}")
                yield Sparkline([], id=f"s-{key}")
        yield Label("", id="t-note")

    def show(self, t: Telemetry) -> None:
        if t is self._shown:
            return
        self._shown = t
        for key, name in ROWS:
            series: tuple[float, ...] = getattr(t, key)
            self.query_one(f"#l-{key}", Label).update(f"{name:<4} {series[-1]:3.0f}%" if series else f"{name:<4}    -")
            self.query_one(f"#s-{key}", Sparkline).data = list(series[-WINDOW:])
        note = ""
        if t.last is None:
            note = "no telemetry yet"
        elif not t.last.gpus:
            note = t.last.gpu_note or "no GPU figures"
        self.query_one("#t-note", Label).update(note)
