"""A run whose machine is gone still shows its log and metrics: from the folder they were last
downloaded into (`<outputs>/<UTC>_<code>_<dataset>/logs/`), as the events a follower would give."""

from __future__ import annotations

import json
from pathlib import Path

from runner.events import Event, LogChunk, TelemetrySample
from runner.metrics import parse_lines, split_lines
from runner.remote.telemetry import Sample

LOG_TAIL = 4 << 20  # bytes of the log read back (the widget keeps its last lines only)


def events_from_download(folder: Path) -> list[Event]:
    logs = folder / "logs"
    out: list[Event] = []
    try:
        with open(logs / "train.log", "rb") as f:
            size = f.seek(0, 2)
            start = max(0, size - LOG_TAIL)
            f.seek(start)
            out.append(LogChunk(start, f.read()))
    except OSError:
        pass  # a download cut off before the logs: the outputs may still be there
    for name in ("metrics.jsonl", "telemetry.jsonl"):
        try:
            data = (logs / name).read_bytes()
        except OSError:
            continue
        if name == "metrics.jsonl":
            out += [p for _, _, p in parse_lines(data, 0) if p is not None]
            continue
        for at, line in split_lines(data, 0):
            try:
                out.append(TelemetrySample(Sample.from_dict(json.loads(line)), at, at + len(line)))
            except (ValueError, TypeError, AttributeError):
                continue
    return out
