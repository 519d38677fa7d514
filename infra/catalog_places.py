"""Where an accelerator runs: the zone and region of a user's `--zone/--region` checked against a catalog
entry, the refusal of an accelerator a cloud does not offer (split from infra/catalog.py), and the small
text helpers their sentences share."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from infra.errors import BadInput

if TYPE_CHECKING:
    from infra.catalog import Catalog, Entry

_GCP_ZONE = re.compile(r"^[a-z]+(?:-[a-z]+)*\d+-[a-z][a-z0-9]*$")  # us-central1-a, northamerica-northeast1-b
_GCP_REGION = re.compile(r"^[a-z]+(?:-[a-z]+)*\d+$")  # us-central1
_AWS_REGION = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-\d+$")  # us-east-1
_AWS_ZONE = re.compile(r"^([a-z]{2}(?:-gov)?-[a-z]+-\d+)([a-z])$")  # us-east-1a


def zone_region(cloud: str, zone: str) -> str:
    """gcp: us-central1-a -> us-central1; aws: us-east-1a -> us-east-1."""
    if cloud == "aws":
        m = _AWS_ZONE.match(zone)
        return m.group(1) if m else zone
    return zone.rsplit("-", 1)[0]


def listing(items) -> str:
    items = list(items)
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else (items[0] if items else "none")


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def counts_text(counts) -> str:
    return listing([str(c) for c in counts])


def usd(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def gcp_place(e: Entry, zone: str | None, region: str | None) -> tuple[str, str]:
    if zone is not None:
        if _GCP_REGION.match(zone):
            inside = e.zones_in(zone)
            where = f"one of its zones that offer {e.name}: {listing(inside)}" if inside else (
                f"a zone that offers {e.name}: {listing(e.zones)}"
            )
            raise BadInput(f"--zone {zone} is a region, not a zone: give {where}.")
        if not _GCP_ZONE.match(zone):
            raise BadInput(
                f"--zone {zone!r} is not a zone name: write it like us-central1-a "
                f"(zones that offer {e.name}: {listing(e.zones)})."
            )
        its_region = zone_region("gcp", zone)
        if region is not None and region != its_region:
            raise BadInput(f"--zone {zone} is not in --region {region}: give a zone of {region}, or leave one out.")
        if zone not in e.zones:
            raise BadInput(f"{e.name} is not offered in {zone} (per the catalog): choose one of {listing(e.zones)}.")
        return zone, its_region
    if region is not None:
        inside = e.zones_in(region)
        if not inside:
            raise BadInput(
                f"{e.name} is not offered in the region {region} (per the catalog): "
                f"choose one of {listing(e.regions)}."
            )
        return inside[0], region
    return e.zones[0], zone_region("gcp", e.zones[0])


def aws_place(e: Entry, zone: str | None, region: str | None) -> tuple[str | None, str]:
    if region is None:
        raise BadInput(
            f"aws needs a region for {e.name}: set AWS_REGION or pass --region "
            f"(regions that offer it: {listing(e.regions)})."
        )
    if not _AWS_REGION.match(region):
        raise BadInput(f"--region {region!r} is not an aws region name: write it like us-east-1.")
    if region not in e.regions:
        raise BadInput(
            f"{e.name} is not offered in {region} (per the catalog): choose one of {listing(e.regions)}."
        )
    if zone is None:
        return None, region
    m = _AWS_ZONE.match(zone)
    if not m:
        raise BadInput(f"--zone {zone!r} is not an availability zone name: write it like {region}a, or leave it out.")
    if m.group(1) != region:
        raise BadInput(f"--zone {zone} is not in the region {region}: give one of its zones, like {region}a, or leave it out.")
    known = e.zones_in(region)
    if known and zone not in known:
        raise BadInput(f"{e.name} is not offered in {zone} (per the catalog): choose one of {listing(known)}.")
    return zone, region


def _closest(catalog: Catalog, cloud: str, other: Entry) -> Entry | None:
    candidates = [e for e in catalog.entries(cloud) if e.kind == other.kind]
    return min(candidates, key=lambda e: abs(e.memory_gb - other.memory_gb), default=None)

def unknown(catalog: Catalog, cloud: str, name: str) -> BadInput:
    """The refusal of an accelerator `cloud` does not offer: where it is offered instead, or what is near."""
    names = catalog.names(cloud)
    elsewhere = [e for e in catalog.rows if e.name == name and e.cloud != cloud]
    if cloud == "aws" and catalog.is_tpu(name):
        gpus = [e.name for e in catalog.entries("aws") if e.kind == "gpu"]
        return BadInput(
            f"{name} is a TPU, and TPUs exist on gcp only: use --target gcp, or a GPU on aws ({listing(gpus)})."
        )
    if elsewhere:
        other = elsewhere[0]
        closest = _closest(catalog, cloud, other)
        hint = f"the closest on {cloud} is {closest.name} ({closest.memory_gb} GB); " if closest else ""
        return BadInput(
            f"{name} is {article(other.cloud)} {other.cloud} accelerator, not offered on {cloud}: "
            f"{hint}{cloud} offers {listing(names)}."
        )
    lowered = {n.lower(): n for n in names}
    guesses = [n for n in names if n.lower().startswith(name.lower())] or [
        lowered[g] for g in difflib.get_close_matches(name.lower(), list(lowered), n=2, cutoff=0.6)
    ]
    maybe = f" (did you mean {listing(guesses)}?)" if guesses else ""
    return BadInput(f"{name!r} is not an accelerator on {cloud}{maybe}: choose one of {listing(names)}.")
