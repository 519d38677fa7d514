"""The accelerator catalog: which machine carries which accelerator, where, and at what price.

The data lives in infra/accelerators.json (prices with their source and date); this module loads it
and resolves a user's `--accelerator T4:2 --zone ...` into one Offer, or refuses with a sentence that
names what is available.
"""

from __future__ import annotations

from dataclasses import dataclass


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
