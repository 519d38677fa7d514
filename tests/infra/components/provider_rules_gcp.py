"""What the Google Cloud APIs refuse, as rules over declared resources (sources named per rule)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from infra.stack_inputs import StackInputs
from tests.infra.components.harness import Declared
from tests.infra.components.provider_rules_common import RFC1035, cidr_problem, number, physical_name

INSTANCE, TPU = "gcp:compute/instance:Instance", "gcp:tpu/v2Vm:V2Vm"
FIREWALL, NETWORK, SUBNET = "gcp:compute/firewall:Firewall", "gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork"
BUCKET, ACCOUNT = "gcp:storage/bucket:Bucket", "gcp:serviceaccount/account:Account"
NAMED = (INSTANCE, TPU, FIREWALL, NETWORK, SUBNET)


def _names(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Compute Engine and TPU names: RFC 1035, 1-63 characters.
    https://cloud.google.com/compute/docs/naming-resources#resource-name-format"""
    for d in declared:
        if d.type in NAMED:
            name = physical_name(d, "name")
            if len(name) > 63 or not RFC1035.match(name):
                yield f"{d.name}: {d.type} name {name!r} is not 1-63 characters of [a-z0-9-] starting with a letter"


_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def _labels(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Labels: at most 64; keys start with a lowercase letter, keys and values at most 63 characters of
    lowercase letters, digits, _ and -. https://cloud.google.com/compute/docs/labeling-resources#requirements
    (the same for buckets and TPU nodes)."""
    for d in declared:
        if not d.type.startswith("gcp:"):
            continue
        p = d.plain
        sets = [p.get("labels")] + [((p.get("bootDisk") or {}).get("initializeParams") or {}).get("labels")]
        for labels in (s for s in sets if s):
            if len(labels) > 64:
                yield f"{d.name}: {len(labels)} labels (at most 64)"
            for k, v in labels.items():
                if not _LABEL_KEY.match(k) or not _LABEL_VALUE.match(str(v)):
                    yield f"{d.name}: label {k}={v!r} is not a GCP label (lowercase letters, digits, _ and -, 63 at most)"


_TAG = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _firewall_and_tags(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Firewall rules: a network, valid source CIDRs, known protocols, ports 0-65535 (and only for tcp, udp and
    sctp), source tags or source service accounts but not both (likewise targets); network tags of 1-63
    lowercase letters, digits and -. https://cloud.google.com/vpc/docs/firewalls#firewall_rule_components,
    https://cloud.google.com/firewall/docs/firewalls#sources_for_ingress_rules,
    https://cloud.google.com/vpc/docs/add-remove-network-tags#restrictions"""
    for d in declared:
        p = d.plain
        for tag in (p.get("tags") or []) + (p.get("targetTags") or []) if d.type in (INSTANCE, TPU, FIREWALL) else []:
            if not _TAG.match(tag):
                yield f"{d.name}: network tag {tag!r} is not 1-63 lowercase letters, digits and -"
        if d.type != FIREWALL:
            continue
        if not p.get("network"):
            yield f"{d.name}: firewall rule without a network"
        for source in p.get("sourceRanges") or []:
            if problem := cidr_problem(source):
                yield f"{d.name}: firewall source {problem}"
        if p.get("sourceTags") and p.get("sourceServiceAccounts"):
            yield f"{d.name}: firewall with both source tags and source service accounts"
        if p.get("targetTags") and p.get("targetServiceAccounts"):
            yield f"{d.name}: firewall with both target tags and target service accounts"
        for tag in p.get("sourceTags") or []:
            if not _TAG.match(tag):
                yield f"{d.name}: network tag {tag!r} is not 1-63 lowercase letters, digits and -"
        for allow in p.get("allows") or []:
            if allow.get("ports") and allow.get("protocol") not in ("tcp", "udp", "sctp"):
                yield f"{d.name}: firewall ports {allow['ports']} given for {allow.get('protocol')!r}, which has none"
            if allow.get("protocol") not in ("tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"):
                yield f"{d.name}: firewall protocol {allow.get('protocol')!r} is not one GCP knows"
            for port in allow.get("ports") or []:
                if not re.fullmatch(r"\d{1,5}(-\d{1,5})?", port) or any(int(x) > 65535 for x in port.split("-")):
                    yield f"{d.name}: firewall port {port!r} is not a port or a range of ports"


def _networks(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """A subnet: in a network, in a region, an IPv4 range between /8 and /29 inside the private ranges.
    https://cloud.google.com/vpc/docs/subnets#valid-ranges"""
    for d in declared:
        p = d.plain
        if d.type == SUBNET:
            if not p.get("network") or not p.get("region"):
                yield f"{d.name}: subnet without its network or region"
            if problem := cidr_problem(p.get("ipCidrRange"), 4):
                yield f"{d.name}: subnet range {problem}"
            else:
                net = ipaddress.ip_network(p["ipCidrRange"])
                if not 8 <= net.prefixlen <= 29 or not net.is_private:
                    yield f"{d.name}: subnet range {net} is not a private range between /8 and /29"


def _bucket(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Bucket names: 3-63 characters of lowercase letters, digits, -, _ and . that start and end with a
    letter or digit, no IP address, no "goog" prefix, no "google" or close misspellings ("g00gle"), read
    here widely since Google does not publish its list: https://cloud.google.com/storage/docs/buckets#naming.
    Soft delete: 0 (off) or 7 to 90 days: https://cloud.google.com/storage/docs/soft-delete#retention-duration"""
    for d in declared:
        if d.type != BUCKET:
            continue
        name = physical_name(d, "name")
        plain_letters = name.translate(str.maketrans("0135", "olse"))
        if (not 3 <= len(name) <= 63 or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*[a-z0-9]", name)
                or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name)):
            yield f"{d.name}: bucket name {name!r} is not 3-63 lowercase letters, digits, -, _ and ."
        if name.startswith("goog") or re.search(r"g+o+g+l+e|goo+g|g+o+o+g+l", plain_letters):
            yield f"{d.name}: bucket name {name!r} holds 'google' or a close misspelling, which GCS refuses"
        seconds = number(((d.plain.get("softDeletePolicy") or {}).get("retentionDurationSeconds")) or 0)
        if seconds and not 7 * 86400 <= seconds <= 90 * 86400:
            yield f"{d.name}: soft delete retention {seconds} s is neither 0 nor 7-90 days"


def _service_account(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Service account ids: 6-30 characters, [a-z][-a-z0-9]*[a-z0-9]; display name at most 100 characters,
    description at most 256. https://cloud.google.com/iam/docs/service-accounts-create#creating"""
    for d in declared:
        if d.type != ACCOUNT:
            continue
        account = str(d.plain.get("accountId", ""))
        if not 6 <= len(account) <= 30 or not re.fullmatch(r"[a-z][-a-z0-9]*[a-z0-9]", account):
            yield f"{d.name}: service account id {account!r} is not 6-30 of [a-z0-9-] starting with a letter"
        if len(d.plain.get("displayName") or "") > 100 or len(d.plain.get("description") or "") > 256:
            yield f"{d.name}: service account display name over 100 or description over 256 characters"


# GPUs per count on N1 and the most vCPUs each count allows: https://cloud.google.com/compute/docs/gpus#n1-gpus
N1_GPUS = {"nvidia-tesla-t4": {1: 48, 2: 48, 4: 96}, "nvidia-tesla-p4": {1: 24, 2: 48, 4: 96},
           "nvidia-tesla-p100": {1: 16, 2: 32, 4: 64}, "nvidia-tesla-v100": {1: 12, 2: 24, 4: 48, 8: 96}}
# Machine types that carry their GPUs: https://cloud.google.com/compute/docs/accelerator-optimized-machines
CARRIED = {**{f"g2-standard-{n}": ("L4", 1) for n in (4, 8, 12, 16, 32)},
           "g2-standard-24": ("L4", 2), "g2-standard-48": ("L4", 4), "g2-standard-96": ("L4", 8),
           **{f"a2-highgpu-{n}g": ("A100-40GB", n) for n in (1, 2, 4, 8)}, "a2-megagpu-16g": ("A100-40GB", 16),
           **{f"a2-ultragpu-{n}g": ("A100-80GB", n) for n in (1, 2, 4, 8)},
           **{f"a3-highgpu-{n}g": ("H100", n) for n in (1, 2, 4, 8)}}
N1_NAMES = {"nvidia-tesla-t4": "T4", "nvidia-tesla-p4": "P4", "nvidia-tesla-p100": "P100", "nvidia-tesla-v100": "V100"}
GVNIC_SERIES = ("a3", "a4")  # https://cloud.google.com/compute/docs/networking/using-gvnic (required there)
DLVM_DISK_GB = 50  # a Deep Learning VM image needs a disk of its own size: https://cloud.google.com/deep-learning-vm/docs/images


def _gpu_vm(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """The machine type and its GPUs, host maintenance, spot and run-time limits, gVNIC, the boot disk.
    https://cloud.google.com/compute/docs/gpus#restrictions, https://cloud.google.com/compute/docs/instances/spot#limitations,
    https://cloud.google.com/compute/docs/instances/limit-vm-runtime, https://cloud.google.com/compute/docs/disks#disk-types"""
    for d in (x for x in declared if x.type == INSTANCE):
        p, offer = d.plain, inputs.offer
        machine, gpus = p.get("machineType", ""), p.get("guestAccelerators") or []
        if machine.startswith("n1-"):
            vcpus = int(machine.rsplit("-", 1)[1])
            if len(gpus) != 1 or gpus[0].get("type") not in N1_GPUS:
                yield f"{d.name}: an n1 GPU VM takes one guest accelerator of {sorted(N1_GPUS)}, not {gpus}"
            else:
                kind, count = gpus[0]["type"], number(gpus[0]["count"])
                if count not in N1_GPUS[kind] or vcpus > N1_GPUS[kind][count]:
                    yield f"{d.name}: {machine} cannot carry {count} {kind}"
                elif (N1_NAMES[kind], count) != (offer.accelerator, offer.count):
                    yield f"{d.name}: {count} {kind} is not the offer's {offer.accelerator}:{offer.count}"
        elif machine in CARRIED:
            if gpus:
                yield f"{d.name}: {machine} comes with its GPUs and takes no guest accelerators"
            if CARRIED[machine] != (offer.accelerator, offer.count):
                yield f"{d.name}: {machine} carries {CARRIED[machine]}, not the offer's {offer.accelerator}:{offer.count}"
        else:
            yield f"{d.name}: {machine!r} is no GPU machine type"
        s = p.get("scheduling") or {}
        if s.get("onHostMaintenance") != "TERMINATE":
            yield f"{d.name}: a GPU VM must stop for host maintenance (TERMINATE)"
        if s.get("provisioningModel") == "SPOT" and (s.get("automaticRestart") is not False or s.get("preemptible") is not True):
            yield f"{d.name}: a spot VM needs automaticRestart false and preemptible true"
        if s.get("instanceTerminationAction") and not (s.get("provisioningModel") == "SPOT" or s.get("maxRunDuration")):
            yield f"{d.name}: a termination action needs spot or a maximum run duration"
        if s.get("maxRunDuration") and not 30 <= number(s["maxRunDuration"]["seconds"]) <= 120 * 86400:
            yield f"{d.name}: maximum run duration outside 30 s to 120 days"
        nics = p.get("networkInterfaces") or []
        if machine.split("-")[0] in GVNIC_SERIES and any(n.get("nicType") != "GVNIC" for n in nics):
            yield f"{d.name}: {machine} takes gVNIC network interfaces only"
        disk = (p.get("bootDisk") or {}).get("initializeParams") or {}
        m = re.fullmatch(r"projects/([a-z][-a-z0-9]*)/global/images/family/([a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)", disk.get("image", ""))
        if not m:
            yield f"{d.name}: boot image {disk.get('image')!r} is no image family path"
        least = DLVM_DISK_GB if m and m.group(1) == "deeplearning-platform-release" else 10
        if not least <= number(disk.get("size") or 0) <= 65536:
            yield f"{d.name}: boot disk of {disk.get('size')} GB is not {least} GB to 64 TB"
        if disk.get("type") not in ("pd-standard", "pd-balanced", "pd-ssd", "pd-extreme", "hyperdisk-balanced"):
            yield f"{d.name}: boot disk type {disk.get('type')!r} is not one Compute Engine knows"


# Runtime versions per TPU generation: https://cloud.google.com/tpu/docs/runtimes
TPU_RUNTIMES = {"v4": ("tpu-ubuntu2204-base", "tpu-vm-v4-base"), "v5litepod": ("v2-alpha-tpuv5-lite",),
                "v5p": ("v2-alpha-tpuv5",), "v6e": ("v2-alpha-tpuv6e",)}
# Slice sizes, single-host and pod slices (the type's number: TensorCores for v4 and v5p, chips for v5e and
# v6e): https://cloud.google.com/tpu/docs/v4, https://cloud.google.com/tpu/docs/v5e (2D shapes 1x1 to 16x16),
# https://cloud.google.com/tpu/docs/v6e; https://cloud.google.com/tpu/docs/supported-tpu-configurations
TPU_SIZES = {"v4": (8, 16, 32, 64, 128, 256, 512), "v5litepod": (1, 4, 8, 16, 32, 64, 128, 256),
             "v5p": (8, 16, 32, 64, 128), "v6e": (1, 4, 8, 16, 32, 64, 128, 256)}


def _tpu(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """A TPU VM: a known accelerator type, a runtime version of its generation, a network."""
    for d in (x for x in declared if x.type == TPU):
        p = d.plain
        generation, _, size = str(p.get("acceleratorType", "")).rpartition("-")
        if generation not in TPU_SIZES or not size.isdigit() or int(size) not in TPU_SIZES[generation]:
            yield f"{d.name}: TPU type {p.get('acceleratorType')!r} is no slice of its generation"
        elif p.get("runtimeVersion") not in TPU_RUNTIMES[generation]:
            yield f"{d.name}: runtime {p.get('runtimeVersion')!r} does not run on {generation} (one of {TPU_RUNTIMES[generation]})"
        if not (p.get("networkConfig") or {}).get("network"):
            yield f"{d.name}: TPU VM without a network"


def _metadata(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Metadata: each value at most 256 KB, all of them at most 512 KB.
    https://cloud.google.com/compute/docs/metadata/setting-custom-metadata#limitations"""
    for d in declared:
        if d.type in (INSTANCE, TPU):
            sizes = [len(str(v).encode()) for v in (d.plain.get("metadata") or {}).values()]
            if any(s > 256 * 1024 for s in sizes) or sum(sizes) > 512 * 1024:
                yield f"{d.name}: metadata over 256 KB a value or 512 KB in all"


GCP_RULES = (_names, _labels, _firewall_and_tags, _networks, _bucket, _service_account, _gpu_vm, _tpu, _metadata)
