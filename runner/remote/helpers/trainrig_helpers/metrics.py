"""Metrics: one JSON object per line in <logs>/metrics.jsonl, flushed each time, which trainrig
follows live like the log (and `trainrig logs RUN --metrics` prints); TensorBoard scalars beside
them in <logs>/tensorboard/.

A line: {"step": 12, "wall_time": 1700000000.25, "values": {"loss": 0.31, "accuracy": 0.9}}.
Values that are not finite are written as the strings "NaN", "Infinity", "-Infinity", so every
line is strict JSON and a loss that went NaN is still on record.
"""

import json
import math
import operator
import os
import threading
import time

from .directories import directories
from .tfevents import EventFileWriter

FILENAME = "metrics.jsonl"


def _number(name, value):
    try:
        number = float(value)  # also numpy and torch scalars (they implement __float__)
    except (TypeError, ValueError):
        raise TypeError("metric %r must be a number, not %r" % (name, value)) from None
    if math.isfinite(number):
        return number
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


class MetricsWriter:
    def __init__(self, logs_dir=None, tensorboard=True, filename=FILENAME):
        """`tensorboard=False`: write no event files (metrics.jsonl alone)."""
        self.logs_dir = logs_dir or directories().logs
        os.makedirs(self.logs_dir, exist_ok=True)
        self.path = os.path.join(self.logs_dir, filename)
        self._file = open(self.path, "a")
        self._events = EventFileWriter(os.path.join(self.logs_dir, "tensorboard")) if tensorboard else None
        self._lock = threading.Lock()  # two threads logging at once must not interleave a line

    def log(self, step, **values):
        """Record `values` (name=number) at `step` (an int >= 0, e.g. the epoch or the batch count)."""
        if isinstance(step, bool):
            raise TypeError("step must be an integer, not %r" % (step,))
        try:
            step = operator.index(step)  # also numpy integers; never a float, which would lose steps
        except TypeError:
            raise TypeError("step must be an integer, not %r" % (step,)) from None
        if step < 0:
            raise ValueError("step must be 0 or more, not %d" % step)
        if not values:
            raise ValueError("log_metrics needs at least one value, e.g. log_metrics(step, loss=0.3)")
        clean = {name: _number(name, v) for name, v in values.items()}
        now = time.time()
        line = json.dumps({"step": step, "wall_time": round(now, 3), "values": clean}) + "\n"
        with self._lock:
            self._file.write(line)  # one write of one whole line: a follower never sees half of it
            self._file.flush()
            if self._events is not None:
                self._events.add_scalars(step, ((n, float(v)) for n, v in clean.items()), wall_time=now)

    def close(self):
        self._file.close()
        if self._events is not None:
            self._events.close()


_default = None


def log_metrics(step, **values):
    """`MetricsWriter.log` on a writer in the run's logs folder, made on first use."""
    global _default
    if _default is None:
        _default = MetricsWriter()
    _default.log(step, **values)
