"""Cloud resources labelled by trainrig that no live run knows: found by their labels/tags, priced
from the catalog, and deleted on request (`trainrig doctor --clean`) or by `down` for its own run.

Why: an interrupted `pulumi up` can create a machine its stack never recorded; `pulumi destroy` then
succeeds against empty state and the machine bills on. Every resource trainrig makes carries
`managed-by: trainrig` and `trainrig-run: <run id>` from its creation (infra/stack_inputs.py), so the
cloud itself says what is left. The per-cloud calls live in leftovers_aws.py and leftovers_gcp.py;
their SDKs are imported there, inside functions, so `trainrig --help` never pays for them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

from infra.errors import TrainrigError
from infra.stack_inputs import MANAGED_BY

MANAGED_KEY, RUN_KEY = "managed-by", "trainrig-run"
# Deleted in this order: what uses a thing goes before it (an instance before its security group,
# an instance profile before its role, a VM before its bucket's service account).
ORDER = ("tpu-node", "instance", "disk", "volume", "security-group", "key-pair", "instance-profile", "role", "bucket",
         "subnet", "route-table", "internet-gateway", "vpc",  # a run's own AWS network, its VPC last
         "firewall", "subnetwork", "network")  # a run's own GCP network, likewise


class LeftoverError(TrainrigError):
    """A cloud could not be listed, or a leftover could not be deleted (exit 1)."""


@dataclass(frozen=True)
class Leftover:
    cloud: str  # "gcp" | "aws"
    kind: str  # one of ORDER
    id: str  # the cloud's id or name (instance id, bucket name, role name, ...)
    where: str  # aws: region ("global" for IAM); gcp: zone, or the bucket's location
    run_id: str  # its trainrig-run label/tag
    created: str | None  # UTC, ISO 8601; None when the cloud keeps no creation time (security groups)
    hourly_usd: float | None  # from the catalog by machine type (running machines only); None: not priced here
    delete_command: str  # the cloud CLI line that deletes it by hand
    project: str = ""  # gcp
    state: str = ""  # machines: running, stopped, ...

    def age_s(self, now: float | None = None) -> float | None:
        if not self.created:
            return None
        made = datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        return max(0.0, (now or time.time()) - made.timestamp())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["age_s"] = self.age_s()
        return d


@dataclass(frozen=True)
class Places:
    """Where to look: AWS regions (IAM and S3 are global, asked once) and GCP projects."""

    aws_regions: tuple[str, ...] = ()
    gcp_projects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listing:
    leftovers: tuple[Leftover, ...] = ()
    errors: tuple[str, ...] = ()  # what could not be listed, and why: leftovers may hide there
    skipped: tuple[str, ...] = ()  # what was not asked, and why (no credentials, an emulator)
    places: Places = field(default_factory=Places)


def utc(value: object) -> str | None:
    """A cloud's timestamp (a datetime, or an RFC 3339 string) as UTC ISO 8601."""
    if value is None or value == "":
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def hourly_price(cloud: str, machine_type: str, accelerator_type: str | None = None, count: int = 0,
                 spot: bool = False) -> float | None:
    """The catalog's whole-machine price for this machine type (gcp guest GPUs: also by accelerator
    type and count, since one n1-standard-8 carries a T4 or a V100); None when the catalog lacks it."""
    from infra import catalog

    for entry in catalog.load().entries(cloud):
        if accelerator_type and entry.gcp_accelerator_type != accelerator_type:
            continue
        for m in entry.machines:
            if m.machine_type == machine_type and (not accelerator_type or m.count == count):
                return m.spot_usd_h if spot and m.spot_usd_h is not None else m.on_demand_usd_h
    return None


def _lister(cloud: str):  # type: ignore[no-untyped-def]
    if cloud == "aws":
        from runner import leftovers_aws as mod
    else:
        from runner import leftovers_gcp as mod
    return mod


def find(places: Places, known: set[str], run_id: str | None = None) -> Listing:
    """Leftovers in these places whose run is not in `known` (the live runs); with `run_id`, that
    run's resources only (then `known` is not consulted: `down` sweeps its own)."""
    found: list[Leftover] = []
    errors: list[str] = []
    skipped: list[str] = []
    for cloud, wanted in (("aws", places.aws_regions), ("gcp", places.gcp_projects)):
        if not wanted:
            continue
        part = _lister(cloud).list_leftovers(wanted, run_id)
        found += part.leftovers
        errors += part.errors
        skipped += part.skipped
    if run_id is None:
        found = [f for f in found if f.run_id not in known]
    found.sort(key=lambda f: (f.cloud, f.run_id, ORDER.index(f.kind), f.id))
    return Listing(leftovers=tuple(found), errors=tuple(errors), skipped=tuple(skipped), places=places)


@dataclass(frozen=True)
class Deleted:
    leftover: Leftover
    error: str = ""  # empty: deleted (or already gone)


def delete(leftovers: tuple[Leftover, ...] | list[Leftover], on_each: Callable[[Deleted], None] = lambda _d: None) -> list[Deleted]:
    """Delete each, users before what they use; one that fails does not stop the others."""
    out = []
    for f in sorted(leftovers, key=lambda f: ORDER.index(f.kind)):
        try:
            _lister(f.cloud).delete(f)
            done = Deleted(f)
        except LeftoverError as e:
            done = Deleted(f, str(e))
        out.append(done)
        on_each(done)
    return out


def run_places(target: str, region: str | None, project: str | None) -> Places:
    if target == "aws":
        return Places(aws_regions=(region,) if region else ())
    return Places(gcp_projects=(project,) if project else ())


def sweep_run(target: str, run_id: str, region: str | None, project: str | None,
              on_each: Callable[[Deleted], None] = lambda _d: None) -> list[Deleted]:
    """After `pulumi destroy`: whatever still carries this run's label (made by an interrupted `up`
    that the stack never recorded) is deleted. Raises when the listing or a deletion failed, so the
    run stays `destroying` and the next `trainrig down` sweeps again."""
    places = run_places(target, region, project)
    listing = find(places, set(), run_id=run_id)
    if listing.errors:
        raise LeftoverError(f"run {run_id}'s stack is destroyed, but its cloud could not be searched for resources "
                            f"it left behind ({'; '.join(listing.errors)}); `trainrig down {run_id}` tries again.")
    done = delete(listing.leftovers, on_each)
    failed = [d for d in done if d.error]
    if failed:
        raise LeftoverError(f"run {run_id}'s stack is destroyed, but {len(failed)} resource(s) it left behind could not "
                            f"be deleted ({'; '.join(d.error for d in failed)}); `trainrig down {run_id}` tries again.")
    return done


__all__ = ["Deleted", "Leftover", "LeftoverError", "Listing", "MANAGED_BY", "MANAGED_KEY", "ORDER", "Places", "RUN_KEY",
           "delete", "find", "hourly_price", "run_places", "sweep_run", "utc"]
