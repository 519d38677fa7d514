"""Everything one run's Pulumi component needs, read from its stack config (see infra/stack_config.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.catalog import Offer

if TYPE_CHECKING:
    from infra.spec import RunSpec
    from infra.stack_config import MachineKeys

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
    nodes: int = 1  # machines of the offer that train together (`--nodes`); a TPU pod slice is one, of offer.hosts

    @property
    def host_count(self) -> int:
        """Every machine of the run: its nodes, or a TPU pod slice's hosts. Above 1, they reach each other."""
        return self.nodes * self.offer.hosts

    @property
    def hourly_usd(self) -> float:
        """What the run's machines cost together per hour (a pod slice's price covers all its hosts)."""
        return self.offer.hourly_usd * self.nodes

    @property
    def labels(self) -> dict[str, str]:
        """GCP labels / AWS tags on everything (GCP label values: lowercase, digits, - and _)."""
        return {
            "trainrig-run": self.run_id,
            "trainrig-code": self.code_name,
            "trainrig-dataset": self.dataset_name,
            "managed-by": MANAGED_BY,
        }


SSH_USERS = {"gcp": "trainrig", "aws": "ubuntu"}  # aws: the Deep Learning AMI's (Ubuntu) login user
FAILSAFE_MARGIN_MIN = 60  # provisioning, installs and the last sync happen outside the max runtime


def _bucket_and_prefix(uri: str | None) -> tuple[str | None, str]:
    if not uri or "://" not in uri:
        return None, ""
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    return bucket, prefix.strip("/")


def inputs_for(spec: "RunSpec", keys: "MachineKeys") -> StackInputs:
    """The component's inputs from the run spec: the catalog resolves the machine, the keys are read."""
    from pathlib import Path

    from infra import catalog
    from infra.errors import BadInput

    cloud = spec.cloud
    assert cloud is not None
    offer = catalog.resolve(spec.target, cloud.accelerator_text, zone=cloud.zone, region=cloud.region, spot=cloud.spot)
    try:
        private = Path(keys.host_key_file).read_text()
        public = Path(keys.host_key_file + ".pub").read_text().strip()
    except OSError as e:
        raise BadInput(f"the run's host key {keys.host_key_file} cannot be read ({e.strerror}): "
                       f"`trainrig up {spec.run_id}` makes a new one.") from e
    dataset_bucket, dataset_prefix = _bucket_and_prefix(spec.dataset)
    out_bucket, out_prefix = _bucket_and_prefix(spec.output_store)
    # The machine writes `<store>/<run id>/` only (the stack's own bucket included): its rights stop there.
    out_prefix = f"{out_prefix}/{spec.run_id}".strip("/")
    return StackInputs(
        run_id=spec.run_id, code_name=spec.code_name, dataset_name=spec.dataset_name, offer=offer, spot=cloud.spot,
        disk_gb=cloud.disk_gb, ssh_from=cloud.ssh_from, ssh_user=SSH_USERS[spec.target],
        ssh_public_key=keys.ssh_public_key, host_key=HostKey(private_openssh=private, public_openssh=public),
        project=cloud.project, image=cloud.image, dataset_bucket=dataset_bucket, dataset_prefix=dataset_prefix,
        output_store_bucket=out_bucket, output_store_prefix=out_prefix,
        failsafe_minutes=spec.max_runtime_s // 60 + FAILSAFE_MARGIN_MIN, nodes=spec.nodes,
    )
