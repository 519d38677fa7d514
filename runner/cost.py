"""What a cloud run has cost so far, from this computer's journal: the catalog's hourly price times
the time since provisioning began (until `down` finished). An upper bound: the machine powers itself
off after the training, and a stopped machine bills its disk only."""

from __future__ import annotations

import calendar
import time

from runner.journal import RunRecord


def epoch(utc: str) -> float:
    return calendar.timegm(time.strptime(utc[:19], "%Y-%m-%dT%H:%M:%S"))


def cost_so_far(record: RunRecord, now: float | None = None) -> float | None:
    """USD, or None for a run without a priced machine (local, ssh, or not provisioned yet)."""
    if record.stack is None or not record.phases:
        return None
    start = epoch(record.phases[0][1])
    ended = [at for phase, at in record.phases if phase == "destroyed"]
    end = epoch(ended[-1]) if ended and record.state == "destroyed" else (now or time.time())
    return max(0.0, end - start) / 3600 * record.stack.hourly_price
