"""The accelerator catalog: which machine carries which accelerator, where, and at what price.

The data lives in infra/accelerators.json (prices with their source and date); this module loads it
and resolves a user's `--accelerator T4:2 --zone ...` into one Offer, or refuses with a sentence that
names what is available.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources

from infra.errors import BadInput


@dataclass(frozen=True)
class Offer:
    """One resolved choice: a machine type with its accelerators, in one place, at one price."""

    cloud: str  # "gcp" | "aws"
    accelerator: str  # catalog name: "T4", "A100-80GB", "v5litepod-8"
    count: int  # GPUs on the machine (1 for a TPU slice)
    kind: str  # "gpu" | "tpu"
    machine_type: str  # gcp: n1-standard-8, a2-highgpu-1g; aws: g4dn.xlarge; tpu: the accelerator type
    gcp_accelerator_type: str | None  # gcp guest accelerator (nvidia-tesla-t4); None when the family carries it
    tpu_runtime: str | None  # TPU VM runtime version (tpu-ubuntu2204-base, v2-alpha-tpuv5-lite)
    memory_gb: int  # accelerator memory per device
    zone: str | None  # gcp zone / aws availability zone (None: let AWS pick within the region)
    region: str
    hourly_usd: float  # on-demand or spot, whichever was asked for
    price_source: str
    price_date: str
    image: str  # gcp: image family in project deeplearning-platform-release; aws: AMI name pattern


# ---------------------------------------------------------------------------------------------------------------
# The catalog itself: loaded from accelerators.json on first use (never at import: `trainrig --help` stays fast).

CLOUDS = ("gcp", "aws")
DATA_FILE = "accelerators.json"
_GCP_ZONE = re.compile(r"^[a-z]+(?:-[a-z]+)*\d+-[a-z][a-z0-9]*$")  # us-central1-a, northamerica-northeast1-b
_GCP_REGION = re.compile(r"^[a-z]+(?:-[a-z]+)*\d+$")  # us-central1
_AWS_REGION = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-\d+$")  # us-east-1
_AWS_ZONE = re.compile(r"^([a-z]{2}(?:-gov)?-[a-z]+-\d+)([a-z])$")  # us-east-1a
_TPU_NAME = re.compile(r"^v\d+[a-z]*(?:pod)?-\d+$", re.IGNORECASE)  # v4-8, v5litepod-8, v6e-4


@dataclass(frozen=True)
class Machine:
    """One machine (type) that carries `count` of an accelerator, with its whole-machine prices."""

    count: int
    machine_type: str
    on_demand_usd_h: float
    spot_usd_h: float | None  # None: no spot price known, spot is refused


@dataclass(frozen=True)
class Entry:
    """One accelerator on one cloud, as accelerators.json describes it."""

    cloud: str
    name: str
    kind: str  # "gpu" | "tpu"
    memory_gb: int  # per device (per chip for a TPU)
    machines: tuple[Machine, ...]
    regions: tuple[str, ...]
    zones: tuple[str, ...]  # gcp: the zones that offer it; aws: optional availability zones (empty: any in the region)
    image: str
    gcp_accelerator_type: str | None
    tpu_runtime: str | None
    price_region: str
    price_source: str
    price_date: str

    @classmethod
    def from_dict(cls, d: dict) -> "Entry":
        return cls(
            cloud=d["cloud"],
            name=d["name"],
            kind=d["kind"],
            memory_gb=int(d["memory_gb"]),
            machines=tuple(
                Machine(
                    count=int(m["count"]),
                    machine_type=m["machine_type"],
                    on_demand_usd_h=float(m["on_demand_usd_h"]),
                    spot_usd_h=None if m.get("spot_usd_h") is None else float(m["spot_usd_h"]),
                )
                for m in d["machines"]
            ),
            regions=tuple(d["regions"]),
            zones=tuple(d.get("zones") or ()),
            image=d["image"],
            gcp_accelerator_type=d.get("gcp_accelerator_type"),
            tpu_runtime=d.get("tpu_runtime"),
            price_region=d["price_region"],
            price_source=d["price_source"],
            price_date=d["price_date"],
        )

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(m.count for m in self.machines)

    def machine(self, count: int) -> Machine | None:
        return next((m for m in self.machines if m.count == count), None)

    def zones_in(self, region: str) -> tuple[str, ...]:
        return tuple(z for z in self.zones if _zone_region(self.cloud, z) == region)


def _zone_region(cloud: str, zone: str) -> str:
    """gcp: us-central1-a -> us-central1; aws: us-east-1a -> us-east-1."""
    if cloud == "aws":
        m = _AWS_ZONE.match(zone)
        return m.group(1) if m else zone
    return zone.rsplit("-", 1)[0]


def _listing(items) -> str:
    items = list(items)
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else (items[0] if items else "none")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _counts(counts) -> str:
    return _listing([str(c) for c in counts])


def _usd(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


@dataclass(frozen=True)
class Catalog:
    note: str
    rows: tuple[Entry, ...]

    @classmethod
    def from_dict(cls, d: dict) -> "Catalog":
        return cls(note=d.get("note", ""), rows=tuple(Entry.from_dict(e) for e in d["entries"]))

    def entries(self, cloud: str | None = None) -> tuple[Entry, ...]:
        return tuple(e for e in self.rows if cloud is None or e.cloud == cloud)

    def names(self, cloud: str | None = None) -> tuple[str, ...]:
        out: list[str] = []
        for e in self.entries(cloud):
            if e.name not in out:
                out.append(e.name)
        return tuple(out)

    def find(self, cloud: str, name: str) -> Entry | None:
        return next((e for e in self.rows if e.cloud == cloud and e.name == name), None)

    def _canonical(self, name: str) -> str | None:
        return next((n for n in self.names() if n.lower() == name.lower()), None)

    def _is_tpu(self, name: str) -> bool:
        return any(e.kind == "tpu" for e in self.rows if e.name == name) or bool(_TPU_NAME.match(name))

    # -- parsing ------------------------------------------------------------------------------------------------

    def parse_accelerator(self, text: str) -> tuple[str, int]:
        """'T4' -> ('T4', 1); 't4:2' -> ('T4', 2); 'v5litepod-8' -> ('v5litepod-8', 1)."""
        text = (text or "").strip()
        raw, sep, count_text = text.partition(":")
        raw = raw.strip()
        if not raw:
            raise BadInput(
                f"--accelerator {text!r} names no accelerator: give one from `trainrig accelerators`, e.g. T4 or T4:2."
            )
        name = self._canonical(raw) or raw
        if not sep:
            return name, 1
        if self._is_tpu(name):
            family = name.rsplit("-", 1)[0]
            sizes = [n for n in self.names() if n.rsplit("-", 1)[0] == family]
            raise BadInput(
                f"--accelerator {text}: a TPU slice carries its size in its name and takes no count, "
                f"so write {name}" + (f" (sizes in the catalog: {_listing(sizes)})." if sizes else ".")
            )
        count_text = count_text.strip()
        if not count_text.isdigit():
            raise BadInput(f"--accelerator {text}: the count after ':' must be a whole number, e.g. {name}:2.")
        count = int(count_text)
        if count < 1:
            raise BadInput(f"--accelerator {text}: the count must be at least 1, e.g. {name}:1 (or just {name}).")
        return name, count

    # -- resolving ----------------------------------------------------------------------------------------------

    def _closest(self, cloud: str, other: Entry) -> Entry | None:
        candidates = [e for e in self.entries(cloud) if e.kind == other.kind]
        return min(candidates, key=lambda e: abs(e.memory_gb - other.memory_gb), default=None)

    def _unknown(self, cloud: str, name: str) -> BadInput:
        names = self.names(cloud)
        elsewhere = [e for e in self.rows if e.name == name and e.cloud != cloud]
        if cloud == "aws" and self._is_tpu(name):
            gpus = [e.name for e in self.entries("aws") if e.kind == "gpu"]
            return BadInput(
                f"{name} is a TPU, and TPUs exist on gcp only: use --target gcp, or a GPU on aws ({_listing(gpus)})."
            )
        if elsewhere:
            other = elsewhere[0]
            closest = self._closest(cloud, other)
            hint = f"the closest on {cloud} is {closest.name} ({closest.memory_gb} GB); " if closest else ""
            return BadInput(
                f"{name} is {_article(other.cloud)} {other.cloud} accelerator, not offered on {cloud}: "
                f"{hint}{cloud} offers {_listing(names)}."
            )
        lowered = {n.lower(): n for n in names}
        guesses = [n for n in names if n.lower().startswith(name.lower())] or [
            lowered[g] for g in difflib.get_close_matches(name.lower(), list(lowered), n=2, cutoff=0.6)
        ]
        maybe = f" (did you mean {_listing(guesses)}?)" if guesses else ""
        return BadInput(f"{name!r} is not an accelerator on {cloud}{maybe}: choose one of {_listing(names)}.")

    def _gcp_place(self, e: Entry, zone: str | None, region: str | None) -> tuple[str, str]:
        if zone is not None:
            if _GCP_REGION.match(zone):
                inside = e.zones_in(zone)
                where = f"one of its zones that offer {e.name}: {_listing(inside)}" if inside else (
                    f"a zone that offers {e.name}: {_listing(e.zones)}"
                )
                raise BadInput(f"--zone {zone} is a region, not a zone: give {where}.")
            if not _GCP_ZONE.match(zone):
                raise BadInput(
                    f"--zone {zone!r} is not a zone name: write it like us-central1-a "
                    f"(zones that offer {e.name}: {_listing(e.zones)})."
                )
            zone_region = _zone_region("gcp", zone)
            if region is not None and region != zone_region:
                raise BadInput(f"--zone {zone} is not in --region {region}: give a zone of {region}, or leave one out.")
            if zone not in e.zones:
                raise BadInput(f"{e.name} is not offered in {zone} (per the catalog): choose one of {_listing(e.zones)}.")
            return zone, zone_region
        if region is not None:
            inside = e.zones_in(region)
            if not inside:
                raise BadInput(
                    f"{e.name} is not offered in the region {region} (per the catalog): "
                    f"choose one of {_listing(e.regions)}."
                )
            return inside[0], region
        return e.zones[0], _zone_region("gcp", e.zones[0])

    def _aws_place(self, e: Entry, zone: str | None, region: str | None) -> tuple[str | None, str]:
        if region is None:
            raise BadInput(
                f"aws needs a region for {e.name}: set AWS_REGION or pass --region "
                f"(regions that offer it: {_listing(e.regions)})."
            )
        if not _AWS_REGION.match(region):
            raise BadInput(f"--region {region!r} is not an aws region name: write it like us-east-1.")
        if region not in e.regions:
            raise BadInput(
                f"{e.name} is not offered in {region} (per the catalog): choose one of {_listing(e.regions)}."
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
            raise BadInput(f"{e.name} is not offered in {zone} (per the catalog): choose one of {_listing(known)}.")
        return zone, region

    def resolve(
        self,
        cloud: str,
        accelerator_text: str,
        *,
        zone: str | None = None,
        region: str | None = None,
        spot: bool = False,
    ) -> Offer:
        """The one machine that carries `accelerator_text` on `cloud` in that place, at its price; or BadInput."""
        if cloud not in CLOUDS:
            raise BadInput(f"the cloud {cloud!r} is not known: choose one of {_listing(CLOUDS)}.")
        name, count = self.parse_accelerator(accelerator_text)
        zone = zone.strip().lower() if zone else None
        region = region.strip().lower() if region else None
        e = self.find(cloud, name)
        if e is None:
            raise self._unknown(cloud, name)
        machine = e.machine(count)
        if machine is None:
            raise BadInput(
                f"{name}:{count} is not offered on {cloud}: a machine there carries {_counts(e.counts)} {name}, "
                f"e.g. --accelerator {name}:{e.counts[-1]}."
            )
        if cloud == "gcp":
            where_zone, where_region = self._gcp_place(e, zone, region)
        else:
            where_zone, where_region = self._aws_place(e, zone, region)
        if spot and machine.spot_usd_h is None:
            raise BadInput(
                f"no spot price is known for {name}:{count} on {cloud} ({machine.machine_type}): "
                f"leave out --spot to run on-demand (about ${machine.on_demand_usd_h:.2f}/h)."
            )
        return Offer(
            cloud=cloud,
            accelerator=name,
            count=count,
            kind=e.kind,
            machine_type=machine.machine_type,
            gcp_accelerator_type=e.gcp_accelerator_type,
            tpu_runtime=e.tpu_runtime,
            memory_gb=e.memory_gb,
            zone=where_zone,
            region=where_region,
            hourly_usd=machine.spot_usd_h if spot else machine.on_demand_usd_h,  # type: ignore[arg-type]
            price_source=e.price_source,
            price_date=e.price_date,
            image=e.image,
        )

    def places(self, cloud: str, accelerator: str) -> tuple[str, ...]:
        """Where the catalog knows `accelerator` on `cloud` (gcp: zones, aws: regions); () if it knows none.

        For error messages after a capacity failure ("try elsewhere"), so it never raises."""
        try:
            name, _ = self.parse_accelerator(accelerator)
        except BadInput:
            return ()
        e = self.find(cloud, name)
        if e is None:
            return ()
        return e.zones if cloud == "gcp" else e.regions

    # -- showing ------------------------------------------------------------------------------------------------

    def format_table(self, cloud: str | None = None) -> str:
        """The plain-text table of `trainrig accelerators`: one line per machine, then where the prices come from."""
        if cloud is not None and cloud not in CLOUDS:
            raise BadInput(f"the cloud {cloud!r} is not known: choose one of {_listing(CLOUDS)}.")
        header = ("CLOUD", "ACCELERATOR", "KIND", "MEMORY", "COUNT", "MACHINE TYPE", "ON-DEMAND $/H", "SPOT $/H", "WHERE")
        lines: list[tuple[str, ...]] = [header]
        for e in self.entries(cloud):
            places = e.zones if e.cloud == "gcp" else e.regions
            unit = "zone" if e.cloud == "gcp" else "region"
            shown = ", ".join(places[:3]) + (", ..." if len(places) > 3 else "")
            where = f"{len(places)} {unit}{'s' if len(places) != 1 else ''}: {shown}"
            for i, m in enumerate(e.machines):
                first = i == 0
                lines.append((
                    e.cloud if first else "",
                    e.name if first else "",
                    e.kind if first else "",
                    f"{e.memory_gb} GB" if first else "",
                    str(m.count),
                    m.machine_type + (f" + {e.gcp_accelerator_type}" if e.gcp_accelerator_type else ""),
                    _usd(m.on_demand_usd_h),
                    _usd(m.spot_usd_h),
                    where if first else "",
                ))
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines]
        for c in CLOUDS if cloud is None else (cloud,):
            rows = self.entries(c)
            if not rows:
                continue
            sources = sorted({e.price_source for e in rows})
            dates = sorted({e.price_date for e in rows})
            regions = sorted({e.price_region for e in rows})
            out.append(
                f"{c} prices: USD/h per whole machine, list prices in {', '.join(regions)} from {', '.join(sources)} "
                f"as of {dates[0] if len(dates) == 1 else dates[0] + '..' + dates[-1]}; not fetched live, check before "
                "relying on them; spot figures are estimates (- = none known)."
            )
        return "\n".join(out)


@functools.lru_cache(maxsize=1)
def load() -> Catalog:
    """The catalog shipped with trainrig (infra/accelerators.json), read once."""
    text = resources.files("infra").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return Catalog.from_dict(json.loads(text))


def parse_accelerator(text: str) -> tuple[str, int]:
    return load().parse_accelerator(text)


def resolve(
    cloud: str,
    accelerator_text: str,
    *,
    zone: str | None = None,
    region: str | None = None,
    spot: bool = False,
) -> Offer:
    return load().resolve(cloud, accelerator_text, zone=zone, region=region, spot=spot)


def places(cloud: str, accelerator: str) -> tuple[str, ...]:
    return load().places(cloud, accelerator)


def format_table(cloud: str | None = None) -> str:
    return load().format_table(cloud)


def fallback_zones(accelerator: str, zone: str, most: int = 6) -> list[str]:
    """gcp zones to try after `zone` had no capacity: the same region's first (the bucket and the
    data stay close), then the others, in the catalog's order; at most `most`."""
    region = zone.rsplit("-", 1)[0]
    others = [z for z in places("gcp", accelerator) if z != zone]
    near = [z for z in others if z.rsplit("-", 1)[0] == region]
    return (near + [z for z in others if z not in near])[:most]
