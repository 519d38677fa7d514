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
    return calendar.timegm(time.strptime(utc[:19], "%Y-%m-%dT%H:%M:%S"))


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
