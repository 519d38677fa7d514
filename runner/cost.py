"""What a cloud run has cost so far, from this computer's journal: the catalog's hourly price times
the time since provisioning began (until `down` finished). An upper bound: the machine powers itself
off after the training, and a stopped machine bills its disk only. A run restarted after a
preemption adds each lost machine's time at its own price (runner/journal.py Restart)."""

from __future__ import annotations

import calendar
import time

from runner.journal import RunRecord
from runner.states import RunState


def epoch(utc: str) -> float:
    """Seconds since the epoch of a journal or status time (`2026-11-30T21:05:07.123Z`, ms optional)."""
    millis = int(utc[20:23]) / 1000 if len(utc) >= 23 and utc[19] == "." and utc[20:23].isdigit() else 0
    return calendar.timegm(time.strptime(utc[:19], "%Y-%m-%dT%H:%M:%S")) + millis


def attempt_start(record: RunRecord) -> str | None:
    """When the current machine's provisioning began."""
    if record.attempt_started_at:
        return record.attempt_started_at
    return record.phases[0][1] if record.phases else None


def attempt_cost(record: RunRecord, now: float | None = None) -> float | None:
    """USD of the current machine alone, or None for a run without a priced machine."""
    start = attempt_start(record)
    if record.stack is None or start is None:
        return None
    ended = [at for phase, at in record.phases if phase == "destroyed"]
    end = epoch(ended[-1]) if ended and record.state == RunState.DESTROYED else (now or time.time())
    return max(0.0, end - epoch(start)) / 3600 * record.stack.hourly_price


def cost_so_far(record: RunRecord, now: float | None = None) -> float | None:
    """USD, or None for a run without a priced machine (local, ssh, or not provisioned yet)."""
    current = attempt_cost(record, now)
    earlier = [r.cost_usd for r in record.restarts if r.cost_usd is not None]
    if current is None and not earlier:
        return None
    return (current or 0.0) + sum(earlier)
