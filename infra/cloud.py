"""The cloud part of a run spec (targets gcp and aws): what machine, where, and who may reach it."""

from __future__ import annotations

from dataclasses import dataclass

CLOUD_TARGETS = ("gcp", "aws")
DEFAULT_DISK_GB = 200
MIN_DISK_GB = 50  # the Deep Learning images alone take ~40-50 GB


@dataclass(frozen=True)
class CloudSpec:
    accelerator: str  # a catalog name: "T4", "A10G", "v5litepod-8" (see `trainrig accelerators`)
    count: int = 1  # devices per machine; TPU slices carry it in their name, so 1
    zone: str | None = None  # gcp: a zone (us-central1-a); aws: an availability zone, optional
    region: str | None = None  # aws: the region; gcp: derived from the zone
    project: str | None = None  # gcp project id
    spot: bool = False
    disk_gb: int = DEFAULT_DISK_GB
    ssh_from: str = ""  # CIDR allowed to reach tcp:22; never 0.0.0.0/0 unless asked for by name
    image: str | None = None  # override the catalog's image (family or AMI name pattern)

    @property
    def accelerator_text(self) -> str:
        return self.accelerator if self.count == 1 else f"{self.accelerator}:{self.count}"
