"""The cloud part of a run spec (targets gcp and aws): what machine, where, and who may reach it."""

from __future__ import annotations

from dataclasses import dataclass

from infra.errors import BadInput

CLOUD_TARGETS = ("gcp", "aws")
DEFAULT_DISK_GB = 200
# The smallest boot disk each cloud's image takes. GCP: a Deep Learning VM image needs a 50 GB disk
# (https://cloud.google.com/deep-learning-vm/docs/images; Compute Engine refuses a disk smaller than its
# image). AWS: the root volume may not be smaller than the AMI's snapshot, and the DLAMI release notes
# recommend 100 GB (https://docs.aws.amazon.com/dlami/latest/devguide/launch.html); the component also
# checks the snapshot of the AMI it finds. TPU VMs bring their own disk (no minimum asked here).
MIN_DISK_GB = {"gcp": 50, "aws": 100}


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
    any_zone: bool = False  # gcp: on "no capacity", try the catalog's other zones (same region first)

    @property
    def accelerator_text(self) -> str:
        return self.accelerator if self.count == 1 else f"{self.accelerator}:{self.count}"


ANYWHERE = "anywhere"  # the one spelling that opens tcp:22 to the whole internet


def parse_ssh_from(text: str) -> str:
    """A CIDR for the firewall; 0.0.0.0/0 only when asked for by the name `anywhere`."""
    import ipaddress

    if text.strip().lower() == ANYWHERE:
        return "0.0.0.0/0"
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as e:
        raise BadInput(f"--ssh-from {text!r} is not an address range: write it like 203.0.113.7/32 or 203.0.113.0/24.") from e
    if net.prefixlen == 0:
        raise BadInput(
            f"--ssh-from {text} would open SSH to the whole internet: if you really want that, write --ssh-from {ANYWHERE}."
        )
    return str(net)


def check_cloud_buckets(target: str, dataset: str | None, output_store: str | None) -> None:
    """The machine reads and writes buckets with its own narrow identity, never with copied
    credentials: so only buckets of its own cloud."""
    scheme = {"gcp": "gs", "aws": "s3"}[target]
    for option, uri in (("--dataset", dataset), ("--output-store", output_store)):
        if uri and "://" in uri and not uri.startswith(f"{scheme}://"):
            raise BadInput(
                f"{option} {uri} is not in {target}'s storage: a {target} machine uses {scheme}:// buckets only "
                f"(no credentials are copied to it); copy the data with `trainrig dataset pull` + `push` to a {scheme}:// bucket."
            )


# What each cloud takes as an image override. GCP: an image family, an RFC 1035 name of at most 63
# characters (https://cloud.google.com/compute/docs/naming-resources#resource-name-format). AWS: an AMI
# name pattern: 3-128 letters, digits, ( ) [ ] space . / - ' @ _, plus the filter's * and ?
# (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html, Name).
_IMAGE = {"gcp": r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?", "aws": r"[A-Za-z0-9()\[\] ./\-'@_*?]{3,128}"}
_IMAGE_EXAMPLE = {"gcp": "common-cu129-ubuntu-2204-nvidia-580",
                  "aws": "'Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *'"}


def check_image(target: str, image: str | None) -> None:
    """A GCP family is no AMI pattern and the other way round: say so before anything is made."""
    import re

    if image and not re.fullmatch(_IMAGE[target], image):
        kind = "a Deep Learning VM image family" if target == "gcp" else "an AMI name pattern"
        raise BadInput(f"--image {image!r} is not {kind}, which {target} needs: e.g. --image {_IMAGE_EXAMPLE[target]}.")


def check_cloud_nodes(target: str, cloud: CloudSpec | None, nodes: int) -> None:
    """A TPU pod slice is already several machines (its hosts run the training together), and trainrig
    makes one slice per run: several nodes of TPUs are asked for by a bigger slice, not by --nodes."""
    from infra import catalog

    if cloud is None or nodes <= 1:
        return
    entry = catalog.load().find(target, cloud.accelerator)
    if entry is not None and entry.kind == "tpu":
        raise BadInput(f"--nodes {nodes} does not apply to the TPU slice {cloud.accelerator}: a pod slice's hosts are its "
                       "nodes, so leave out --nodes and choose a bigger slice (`trainrig accelerators --cloud gcp` lists "
                       "them with their hosts).")


def check_disk(target: str, disk_gb: int) -> None:
    least = MIN_DISK_GB[target]
    if disk_gb < least:
        raise BadInput(f"--disk-gb {disk_gb} is too small for {target}'s Deep Learning image: give at least {least}.")


@dataclass(frozen=True)
class CloudOptions:
    """The cloud options as the user gave them (None: not given)."""

    accelerator: str | None = None
    zone: str | None = None
    region: str | None = None
    project: str | None = None
    spot: bool = False
    disk_gb: int | None = None
    ssh_from: str | None = None
    image: str | None = None
    any_zone: bool = False

    def given(self) -> list[str]:
        return [f"--{k.replace('_', '-')}" for k, v in self.__dict__.items() if v not in (None, False)]


def build_cloud(target: str, options: CloudOptions) -> CloudSpec:
    """Check a cloud run's options against the catalog and the user's cloud defaults."""
    from infra import catalog
    from infra.cloud_defaults import aws_region, gcp_defaults

    accelerator, zone, region, project = options.accelerator, options.zone, options.region, options.project
    spot, ssh_from = options.spot, options.ssh_from
    if options.any_zone and target != "gcp":
        raise BadInput("--any-zone is for --target gcp; on aws, leave out --zone and AWS picks an availability zone.")
    disk_gb = DEFAULT_DISK_GB if options.disk_gb is None else options.disk_gb

    if not accelerator:
        raise BadInput(f"--target {target} needs --accelerator (e.g. T4 or T4:2); `trainrig accelerators` lists them.")
    if target == "gcp":
        defaults = gcp_defaults()
        project = project or defaults.project
        if not project:
            raise BadInput("no GCP project is set: pass --project, set GOOGLE_CLOUD_PROJECT, or `gcloud config set project ID`.")
        zone = zone or (defaults.zone if not region else None)
    else:
        if project:
            raise BadInput("--project is for --target gcp; an aws run is placed by --region.")
        region = region or aws_region()
    offer = catalog.resolve(target, accelerator, zone=zone, region=region, spot=spot)
    check_disk(target, disk_gb)
    check_image(target, options.image)
    return CloudSpec(
        accelerator=offer.accelerator, count=offer.count, zone=offer.zone, region=offer.region, project=project,
        spot=spot, disk_gb=disk_gb, ssh_from=parse_ssh_from(ssh_from) if ssh_from else "", image=options.image,
        any_zone=options.any_zone,
    )
