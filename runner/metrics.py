"""The training's metrics as trainrig reads them: lines of logs/metrics.jsonl into MetricPoints,
and their summary (last and best value of each metric) for the run manifest."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from runner.events import MetricPoint

# Metrics whose names say "less is better"; every other metric is better when higher. The rule
# is the one the manifest and the README state: a name holding one of these words is minimised.
_LOWER_IS_BETTER = re.compile(r"(^|[_\W])(loss|error|err|mse|mae|rmse|perplexity|ppl|wer|cer|nll|time|latency)([_\W]|$)",
                              re.IGNORECASE)


def goal(name: str) -> str:
    """'min' or 'max': which way this metric gets better, judged by its name."""
    return "min" if _LOWER_IS_BETTER.search(name) else "max"


def parse_line(line: bytes, offset: int) -> MetricPoint | None:
    """A MetricPoint from one line (with its newline) starting at `offset`; None if it is not one."""
    try:
        d = json.loads(line)
        step, wall_time, raw = d["step"], d["wall_time"], d["values"]
        values = {str(k): float(v) for k, v in raw.items()}  # "NaN", "Infinity" included
        if isinstance(step, bool) or not isinstance(step, int):
            return None
        return MetricPoint(step=step, wall_time=float(wall_time), values=values, offset=offset, end=offset + len(line))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def split_lines(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line with its newline) for each line of `data`, which starts at `offset`."""
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        yield offset + pos, data[pos:end]
        pos = end


def parse_lines(data: bytes, offset: int) -> Iterator[tuple[int, bytes, MetricPoint | None]]:
    """(offset, line, point or None) for each line of `data`, which starts at `offset`."""
    for at, line in split_lines(data, offset):
        yield at, line, parse_line(line, at)


@dataclass(frozen=True)
class MetricSummary:
    name: str
    goal: str  # "min" or "max"
    last: float
    last_step: int
    best: float
    best_step: int
    points: int

    def to_dict(self) -> dict:
        return {"goal": self.goal, "last": self.last, "last_step": self.last_step, "best": self.best,
                "best_step": self.best_step, "points": self.points}


def summarize(points: Iterable[MetricPoint]) -> dict[str, MetricSummary]:
    """Last and best value of each metric, in the order metrics first appeared. NaN is never best."""
    out: dict[str, MetricSummary] = {}
    for p in points:
        for name, v in p.values.items():
            old = out.get(name)
            g = old.goal if old else goal(name)
            best, best_step = (old.best, old.best_step) if old else (v, p.step)
            if old and v == v and (best != best or (v < best if g == "min" else v > best)):
                best, best_step = v, p.step
            out[name] = MetricSummary(name, g, v, p.step, best, best_step, (old.points if old else 0) + 1)
    return out


def read_file(path: Path) -> list[MetricPoint]:
    """The points of a metrics.jsonl on this computer (e.g. in a downloaded run); [] if none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [p for _, _, p in parse_lines(data, 0) if p is not None]


def format_point(p: MetricPoint) -> str:
    """One line for a person: step, then each value."""
    values = "  ".join(f"{k} {v:.6g}" for k, v in p.values.items())
    return f"step {p.step:>6}  {values}"
