"""Everything one run's Pulumi component needs, read from its stack config (see infra/stack_config.py)."""

from __future__ import annotations

from dataclasses import dataclass

from infra.catalog import Offer

MANAGED_BY = "trainrig"


@dataclass(frozen=True)
class HostKey:
    """The machine's SSH host key, made by trainrig for this run and handed over at boot, so the
    public half is known (and pinned) before the machine ever answers."""

    private_openssh: str  # a secret: only ever passed to Pulumi as a secret output
    public_openssh: str  # "ssh-ed25519 AAAA..."


@dataclass(frozen=True)
class StackInputs:
    run_id: str
    code_name: str
    dataset_name: str
    offer: Offer  # the catalog's resolved machine: type, accelerator, price, zone/region
    spot: bool
    disk_gb: int
    ssh_from: str  # CIDR for tcp:22
    ssh_user: str
    ssh_public_key: str  # the run's client key (OpenSSH public line) allowed to log in
    host_key: HostKey
    project: str | None = None  # gcp
    image: str | None = None  # override of the catalog's image family / AMI name pattern
    dataset_bucket: str | None = None  # bucket name the machine may read (same cloud only)
    dataset_prefix: str = ""
    output_store_bucket: str | None = None  # the user's own output bucket (else the stack makes one)
    output_store_prefix: str = ""
    failsafe_minutes: int = 13 * 60  # the machine powers off by itself after this, whatever happens

    @property
    def labels(self) -> dict[str, str]:
        """GCP labels / AWS tags on everything (GCP label values: lowercase, digits, - and _)."""
        return {
            "trainrig-run": self.run_id,
            "trainrig-code": self.code_name,
            "trainrig-dataset": self.dataset_name,
            "managed-by": MANAGED_BY,
        }
