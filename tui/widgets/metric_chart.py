"""A metric's curve drawn in braille dots (2x4 per cell): our own small widget, no plotting
dependency. `m` picks the next metric, `l` toggles a log scale."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][column] of a braille cell
LABEL = 9  # characters of the y axis labels


def plot(points: tuple[tuple[int, float], ...], width: int, height: int, log: bool = False) -> list[str]:
    """`height` lines of `width` braille characters; y grows upwards, x spans the steps."""
    if log:
        points = tuple((x, math.log10(y)) for x, y in points if y > 0)
    cols, rows = max(1, width) * 2, max(1, height) * 4
    grid = [[0] * max(1, width) for _ in range(max(1, height))]
    if points:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

        def at(x: float, y: float) -> tuple[int, int]:
            cx = 0 if x1 == x0 else round((x - x0) / (x1 - x0) * (cols - 1))
            cy = rows // 2 if y1 == y0 else round((y1 - y) / (y1 - y0) * (rows - 1))
            return cx, cy

        prev = None
        for x, y in points:
            cur = at(x, y)
            steps = max(1, abs(cur[0] - prev[0]), abs(cur[1] - prev[1])) if prev else 1
            for i in range(1, steps + 1) if prev else (1,):
                px = cur[0] if prev is None else prev[0] + (cur[0] - prev[0]) * i // steps
                py = cur[1] if prev is None else prev[1] + (cur[1] - prev[1]) * i // steps
                grid[py // 4][px // 2] |= DOTS[py % 4][px % 2]
            prev = cur
    return ["".join(chr(0x2800 + c) for c in row) for row in grid]


class MetricChart(Widget):
    DEFAULT_CSS = "MetricChart { height: 8; }"

    def __init__(self, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.series: dict[str, tuple[tuple[int, float], ...]] = {}
        self.metric = ""
        self.log_scale = False

    def show(self, series: dict[str, tuple[tuple[int, float], ...]]) -> None:
        if series is self.series:
            return
        self.series = series
        if self.metric not in series:
            self.metric = "loss" if "loss" in series else (sorted(series)[0] if series else "")
        self.refresh()

    def next_metric(self) -> None:
        names = sorted(self.series)
        if names:
            self.metric = names[(names.index(self.metric) + 1) % len(names)] if self.metric in names else names[0]
            self.refresh()

    def toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self.refresh()

    def render(self) -> Text:
        points = self.series.get(self.metric, ())
        if not points:
            return Text("no metrics yet (the script logs them with trainrig_helpers.log_metrics)", style="dim")
        width, height = max(4, self.size.width - LABEL - 1), max(1, self.size.height - 1)
        lines = plot(points, width, height, self.log_scale)
        ys = [y for _, y in points]
        top, bottom = f"{max(ys):.4g}", f"{min(ys):.4g}"
        out = Text(f"{self.metric}{' (log)' if self.log_scale else ''} {ys[-1]:.4g} at step {points[-1][0]}\n",
                   style="bold")
        for i, line in enumerate(lines):
            label = top if i == 0 else bottom if i == len(lines) - 1 else ""
            out.append(f"{label:>{LABEL}} ", style="dim")
            out.append(line + ("\n" if i < len(lines) - 1 else ""), style="cyan")
        return out
