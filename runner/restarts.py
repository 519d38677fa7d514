"""Spot runs that survive preemption: which runs restart, on what, and the record of each restart.

A run with restarts left whose machine is taken away (the supervisor saw the cloud's preemption
notice: outcome `preempted`) or vanished with its supervisor (outcome `lost`) goes on on a new
machine, from the last checkpoint synced to its output store (runner/lifecycle.py `_restart`).
"""

from __future__ import annotations

import os

from infra.spec import RunSpec
from runner.cost import attempt_cost, attempt_start
from runner.errors import BadInput
from runner.journal import Restart, RunRecord, utc_now
from runner.remote.status import Status
from runner.states import RESTARTABLE, Outcome

DEFAULT_SPOT_RESTARTS = 3
# The local target has no metadata server: a test points its supervisor at a local imitation
# ("gcp=http://127.0.0.1:PORT/computeMetadata/v1/"; a multi-node run's nodes one each: "gcp=URL0,URL1",
# node K asks the K-th, the last for any beyond); cloud runs always watch their cloud's own.
METADATA_ENV = "TRAINRIG_METADATA_URL"


def max_restarts(spec: RunSpec, given: int | None) -> int:
    """The run's restart budget: --max-restarts, else 3 for a spot machine, 0 otherwise."""
    spot = spec.cloud is not None and spec.cloud.spot
    if given is None:
        return DEFAULT_SPOT_RESTARTS if spot else 0
    if given < 0:
        raise BadInput(f"--max-restarts {given} is negative: give 0 (never restart) or more.")
    if given and spec.target == "ssh":
        raise BadInput("--max-restarts needs a machine trainrig can bring up again: use --target local, gcp or aws.")
    if given and spec.target == "local" and not spec.output_store:
        raise BadInput("--max-restarts on the local target needs --output-store gs://BUCKET/PATH or s3://BUCKET/PATH: "
                       "the outputs must outlive the machine to resume from them.")
    return given


def preemption_watch(spec: RunSpec, rank: int = 0) -> tuple[str | None, str | None]:
    """(cloud whose notice node `rank`'s supervisor watches, its metadata server's address or None)."""
    if spec.target in ("gcp", "aws"):
        return spec.target, None
    given = os.environ.get(METADATA_ENV, "")
    cloud, sep, urls = given.partition("=")
    if sep and cloud in ("gcp", "aws") and spec.target == "local":
        each = urls.split(",")
        return cloud, each[min(rank, len(each) - 1)]
    return None, None


def restartable(record: RunRecord, status: Status | None) -> bool:
    return (status is not None and status.done and status.outcome in RESTARTABLE
            and len(record.restarts) < record.max_restarts)


def replaced(record: RunRecord, status: Status) -> bool:
    """`status` is from a machine that has already been replaced (by another follower's restart,
    begun after that machine's supervisor started)."""
    return (status.done and status.outcome in RESTARTABLE and bool(record.attempt_started_at)
            and bool(status.started_at) and status.started_at < record.attempt_started_at)


def lost_attempt(record: RunRecord, status: Status) -> Restart:
    """The attempt that just ended, for the record: its machine, zone and cost."""
    cloud = record.spec.cloud
    return Restart(
        number=len(record.restarts) + 1, outcome=status.outcome or Outcome.LOST, reason=status.reason,
        started_at=attempt_start(record) or "", ended_at=utc_now(),
        machine=record.machine.address if record.machine else "", zone=(cloud.zone or cloud.region or "") if cloud else "",
        hourly_usd=record.stack.hourly_price if record.stack else None, cost_usd=attempt_cost(record),
    )
