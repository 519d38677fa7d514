"""One run's facts: where it runs, what it costs, how it ended, its timeline and its downloads."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from runner.run_view import RunView
from runner.states import Outcome
from tui.widgets.runs_table import duration, phase_style


def facts(view: RunView, now: float) -> Text:
    out = Text()

    def line(label: str, value: str | Text, style: str = "") -> None:
        out.append(f"{label:<9}", style="dim")
        out.append(value if isinstance(value, Text) else Text(value, style=style))
        out.append("\n")

    line("run", view.run_id, "bold")
    line("phase", Text(view.phase, style=phase_style(view)))
    line("target", view.target + (f" {view.accelerator}" if view.accelerator else ""))
    if view.nodes:  # a multi-node run: every machine, rank 0 first
        for k, address in enumerate(view.nodes):
            line(f"node {k}", address)
    else:
        line("machine", view.machine or "none", "" if view.machine else "dim")
    if view.sweep:
        line("sweep", view.sweep + (f" on {view.borrowed_from}" if view.borrowed_from else ""))
    if view.hourly_usd is not None:
        line("cost", f"${view.cost_usd or 0:.2f} so far at most (${view.hourly_usd:.2f}/h)")
    line("elapsed", duration(view.elapsed_s(now)))
    if view.reason:
        line("reason", view.reason, "red" if view.outcome and view.outcome != Outcome.SUCCEEDED else "")
    if view.exit_code is not None:
        line("exit", str(view.exit_code))
    if view.status is not None and view.status.machine.hostname:
        m = view.status.machine
        line("host", f"{m.hostname}: {m.cpus} cpus, {m.memory_gb:.0f} GB")
        for g in m.gpus:
            line("gpu", f"{g.name} {g.memory_mb / 1024:.0f} GB")
    line("outputs", "downloaded" if view.downloaded else "not downloaded", "green" if view.downloaded else "yellow")
    for folder in view.downloads[-2:]:
        line("", folder, "dim")
    if view.status is not None and view.status.warning:
        line("warning", view.status.warning, "bold red")
    out.append("timeline\n", style="dim")
    for step in view.timeline[-6:]:
        out.append(f"  {step.at[11:19] or '        '} ", style="dim")
        out.append(step.phase + ("\n"), style="cyan" if step.on_machine else "")
    if view.progress is not None:
        p = view.progress
        total = f"/{p.bytes_total / 1e6:.1f}" if p.bytes_total else ""
        out.append(f"{p.label}: {p.bytes_done / 1e6:.1f}{total} MB\n", style="yellow")
    return out


class RunFacts(Static):
    def show(self, view: RunView, now: float) -> None:
        self.update(facts(view, now))
