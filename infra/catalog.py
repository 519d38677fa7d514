"""The accelerator catalog: which machine carries which accelerator, where, and at what price.

The data lives in infra/accelerators.json (prices with their source and date); this module loads it
and resolves a user's `--accelerator T4:2 --zone ...` into one Offer, or refuses with a sentence that
names what is available.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources

from infra.catalog_places import aws_place, counts_text, gcp_place, listing, unknown, zone_region
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
    hosts: int = 1  # VMs of a TPU pod slice (each runs the training: its worker id is its rank); 1 otherwise


# ---------------------------------------------------------------------------------------------------------------
# The catalog itself: loaded from accelerators.json on first use (never at import: `trainrig --help` stays fast).

CLOUDS = ("gcp", "aws")
DATA_FILE = "accelerators.json"
_TPU_NAME = re.compile(r"^v\d+[a-z]*(?:pod)?-\d+$", re.IGNORECASE)  # v4-8, v5litepod-8, v6e-4


@dataclass(frozen=True)
class Machine:
    """One machine (type) that carries `count` of an accelerator, with its whole-machine prices."""

    count: int
    machine_type: str
    on_demand_usd_h: float
    spot_usd_h: float | None  # None: no spot price known, spot is refused
    hosts: int = 1  # a TPU pod slice's VMs (workers); every other machine is one host


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
    def from_dict(cls, d: dict) -> Entry:
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
                    hosts=int(m.get("hosts") or 1),
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
        return tuple(z for z in self.zones if zone_region(self.cloud, z) == region)


@dataclass(frozen=True)
class Catalog:
    note: str
    rows: tuple[Entry, ...]

    @classmethod
    def from_dict(cls, d: dict) -> Catalog:
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

    def is_tpu(self, name: str) -> bool:
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
        if self.is_tpu(name):
            family = name.rsplit("-", 1)[0]
            sizes = [n for n in self.names() if n.rsplit("-", 1)[0] == family]
            raise BadInput(
                f"--accelerator {text}: a TPU slice carries its size in its name and takes no count, "
                f"so write {name}" + (f" (sizes in the catalog: {listing(sizes)})." if sizes else ".")
            )
        count_text = count_text.strip()
        if not count_text.isdigit():
            raise BadInput(f"--accelerator {text}: the count after ':' must be a whole number, e.g. {name}:2.")
        count = int(count_text)
        if count < 1:
            raise BadInput(f"--accelerator {text}: the count must be at least 1, e.g. {name}:1 (or just {name}).")
        return name, count

    # -- resolving ----------------------------------------------------------------------------------------------

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
            raise BadInput(f"the cloud {cloud!r} is not known: choose one of {listing(CLOUDS)}.")
        name, count = self.parse_accelerator(accelerator_text)
        zone = zone.strip().lower() if zone else None
        region = region.strip().lower() if region else None
        e = self.find(cloud, name)
        if e is None:
            raise unknown(self, cloud, name)
        machine = e.machine(count)
        if machine is None:
            raise BadInput(
                f"{name}:{count} is not offered on {cloud}: a machine there carries {counts_text(e.counts)} {name}, "
                f"e.g. --accelerator {name}:{e.counts[-1]}."
            )
        if cloud == "gcp":
            where_zone, where_region = gcp_place(e, zone, region)
        else:
            where_zone, where_region = aws_place(e, zone, region)
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
            hosts=machine.hosts,
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
        """The plain-text table of `trainrig accelerators` (infra/catalog_table.py)."""
        from infra.catalog_table import format_table

        return format_table(self, cloud)


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
