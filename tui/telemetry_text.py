"""The machine's telemetry in words, for `trainrig status`."""

from __future__ import annotations

from runner.remote.telemetry import Sample


def _gb(mb: float | None) -> str:
    return "?" if mb is None else f"{mb / 1024:.1f}"


def _n(x: float | None, unit: str) -> str:
    return "?" if x is None else f"{x:.0f}{unit}"


def telemetry_lines(s: Sample) -> list[str]:
    """One line for the machine (CPU, memory, disk), then one per GPU (or why there is none)."""
    lines = [f"cpu {_n(s.cpu_percent, '%')}  memory {_gb(s.memory_used_mb)}/{_gb(s.memory_total_mb)} GB  "
             f"disk {_gb(s.disk_free_mb)} GB free of {_gb(s.disk_total_mb)} GB"]
    for g in s.gpus:
        lines.append(f"gpu{g.index} {g.name}  {_n(g.utilization_percent, '%')}  memory {_gb(g.memory_used_mb)}/"
                     f"{_gb(g.memory_total_mb)} GB  {_n(g.temperature_c, ' C')}  {_n(g.power_w, ' W')}")
    if not s.gpus:
        lines.append(s.gpu_note or "no GPU figures")
    return lines
