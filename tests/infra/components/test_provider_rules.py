"""The providers' own input rules (provider_rules*.py) over every stack the tests build: the policy tests'
stacks and one per catalog row and count, on demand and spot (where the catalog prices spot), on
GCP GPU, GCP TPU and AWS GPU. Each rule is then shown to catch a stack that breaks it, including the
inputs trainrig itself used to send (an apostrophe, a "g00gle" bucket, the default network)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from infra import catalog
from infra.components.aws_gpu_machine import AwsGpuMachine
from infra.components.gcp_gpu_machine import GcpGpuMachine
from infra.components.gcp_tpu_machine import GcpTpuMachine
from tests.infra.components import policy
from tests.infra.components.harness import Declared, deploy, make_inputs
from tests.infra.components.provider_rules import violations
from tests.infra.components.test_policy import STACKS, add, plain_of, stack


def _catalog_stacks() -> dict[str, tuple[str, object, dict]]:
    """One stack per catalog row and machine count, on demand and (where priced) spot."""
    out: dict[str, tuple[str, object, dict]] = {}
    for e in catalog.load().entries():
        component = "aws-gpu" if e.cloud == "aws" else f"gcp-{e.kind}"
        for m in e.machines:
            text = e.name if e.kind == "tpu" else f"{e.name}:{m.count}"
            region = e.regions[0] if e.cloud == "aws" else None
            for spot in (False, True) if m.spot_usd_h is not None else (False,):
                offer = catalog.resolve(e.cloud, text, region=region, spot=spot)
                out[f"{e.cloud}-{text}{'-spot' if spot else ''}"] = (component, offer, {"spot": spot})
    return out


CATALOG_STACKS = _catalog_stacks()
COMPONENTS = {"gcp-gpu": GcpGpuMachine, "gcp-tpu": GcpTpuMachine, "aws-gpu": AwsGpuMachine}


def test_the_catalog_stacks_cover_every_row_both_markets_and_all_three_kinds():
    rows = {(e.cloud, e.name) for e in catalog.load().entries()}
    assert {(o.cloud, o.accelerator) for _, o, _ in CATALOG_STACKS.values()} == rows
    assert {c for c, _, _ in CATALOG_STACKS.values()} == set(COMPONENTS)
    assert any(ch["spot"] for c, _, ch in CATALOG_STACKS.values() if c == "aws-gpu")
    assert any(ch["spot"] for c, _, ch in CATALOG_STACKS.values() if c == "gcp-tpu")


@pytest.mark.parametrize("name", CATALOG_STACKS)
def test_every_catalog_stack_passes_the_providers_rules_and_the_policy(name):
    component, offer, changes = CATALOG_STACKS[name]
    inputs = make_inputs(offer, **changes)  # type: ignore[arg-type]
    declared = deploy(lambda: COMPONENTS[component]("yolo-coco", inputs)).declared
    assert violations(declared, inputs) == []
    assert policy.violations(declared, inputs) == []


@pytest.mark.parametrize("name", STACKS)
def test_every_policy_stack_passes_the_providers_rules(name):
    declared, inputs = stack(name)
    assert violations(declared, inputs) == []


@pytest.mark.parametrize("run", ["google-bert", "g00gle-vit", "gooooogle-x", "goog1e-x"])
def test_a_run_named_like_google_still_gets_a_bucket_gcs_takes(run):
    code, dataset = run.split("-", 1)
    inputs = make_inputs(STACKS["gcp-t4"][1], run_id=run, code_name=code, dataset_name=dataset)
    declared = deploy(lambda: GcpGpuMachine(run, inputs)).declared
    assert violations(declared, inputs) == []


def _set(typ: str, **values: object) -> Callable[[list[Declared]], None]:
    return lambda d: plain_of(d, typ).update(values)


def _nested(typ: str, change: Callable[[dict], None]) -> Callable[[list[Declared]], None]:
    return lambda d: change(plain_of(d, typ))


GCE, TPU, FW = "gcp:compute/instance:Instance", "gcp:tpu/v2Vm:V2Vm", "gcp:compute/firewall:Firewall"
SUBNET, GCS, SA = "gcp:compute/subnetwork:Subnetwork", "gcp:storage/bucket:Bucket", "gcp:serviceaccount/account:Account"
EC2, SG, S3 = "aws:ec2/instance:Instance", "aws:ec2/securityGroup:SecurityGroup", "aws:s3/bucket:Bucket"
ROLE, SUB, VPC = "aws:iam/role:Role", "aws:ec2/subnet:Subnet", "aws:ec2/vpc:Vpc"
ACCEL_8 = [{"type": "nvidia-tesla-t4", "count": 8}]
# case: (stack, tamper, the complaint's words)
BROKEN: dict[str, tuple[str, Callable[[list[Declared]], None], str]] = {
    "sg description with an apostrophe": ("aws", _set(SG, description="SSH from the user's address"), "description"),
    "rule description with an apostrophe": (
        "aws", _nested(SG, lambda p: p["ingress"][0].update(description="SSH from the user's address")), "rule description"),
    "sg named sg-": ("aws", _set(SG, name="sg-run"), "security group name"),
    "gcs bucket named g00gle": ("gcp-t4", _set(GCS, name="trainrig-g00gle-bert"), "google"),
    "gcs bucket starting goog": ("tpu", _set(GCS, name="goog-outputs"), "google"),
    "gcs bucket with capitals": ("gcp-t4", _set(GCS, name="Trainrig-Run"), "bucket name"),
    "soft delete of 3 days": ("gcp-t4", _set(GCS, softDeletePolicy={"retentionDurationSeconds": 3 * 86400}), "soft delete"),
    "s3 bucket ending -s3alias": ("aws", _set(S3, bucket="trainrig-run-s3alias"), "S3 bucket name"),
    "s3 bucket too long": ("aws", _set(S3, bucket="t" * 64), "S3 bucket name"),
    "gcp label with capitals": ("gcp-t4", _nested(GCE, lambda p: p["labels"].update({"Run": "x"})), "label"),
    "gcp label value with a dot": ("tpu", _nested(TPU, lambda p: p["labels"].update({"run": "a.b"})), "label"),
    "disk label too long": (
        "gcp-t4", _nested(GCE, lambda p: p["bootDisk"]["initializeParams"]["labels"].update({"k": "v" * 64})), "label"),
    "aws tag with a comma": ("aws", _nested(EC2, lambda p: p["tags"].update({"run": "a,b"})), "tag"),
    "aws tag key aws:": ("aws", _nested(SG, lambda p: p["tags"].update({"aws:run": "x"})), "tag"),
    "gcp name with capitals": ("gcp-t4", _set(GCE, name="Trainrig-Run"), "name"),
    "tpu node id too long": ("tpu", _set(TPU, name="t" * 64), "name"),
    "service account id too short": ("gcp-t4", _set(SA, accountId="tr-a"), "service account id"),
    "service account id with underscore": ("tpu", _set(SA, accountId="tr_yolo_coco"), "service account id"),
    "firewall source with host bits": ("gcp-t4", _set(FW, sourceRanges=["198.51.100.7/24"]), "not a CIDR"),
    "firewall without network": ("tpu", lambda d: plain_of(d, FW).pop("network"), "without a network"),
    "firewall port out of range": (
        "gcp-t4", _set(FW, allows=[{"protocol": "tcp", "ports": ["70000"]}]), "port"),
    "network tag with underscore": ("gcp-t4", _set(GCE, tags=["trainrig_run"]), "network tag"),
    "subnet range too small": ("gcp-t4", _set(SUBNET, ipCidrRange="10.64.0.0/30"), "subnet range"),
    "subnet range public": ("tpu", _set(SUBNET, ipCidrRange="8.8.8.0/24"), "subnet range"),
    "sg source not a cidr": ("aws", _nested(SG, lambda p: p["ingress"][0].update(cidrBlocks=["my-laptop"])), "not a CIDR"),
    "vpc range /8": ("aws", _set(VPC, cidrBlock="10.0.0.0/8"), "/16 to /28"),
    "subnet outside the vpc": ("aws", _set(SUB, cidrBlock="192.168.0.0/24"), "not inside"),
    "subnet in another region": ("aws", _set(SUB, availabilityZone="eu-west-1a"), "not a zone of"),
    "eight t4 on an n1": ("gcp-t4", _set(GCE, guestAccelerators=ACCEL_8), "cannot carry"),
    "guest gpus on an a2": ("gcp-a100-spot", _set(GCE, guestAccelerators=[{"type": "nvidia-tesla-a100", "count": 1}]),
                            "takes no guest accelerators"),
    "a2 of another size than the offer": ("gcp-a100-spot", _set(GCE, machineType="a2-highgpu-2g"), "not the offer"),
    "a machine that carries no gpu": ("gcp-t4", _set(GCE, machineType="e2-standard-8"), "no GPU machine type"),
    "spot vm that restarts": ("gcp-a100-spot", _nested(GCE, lambda p: p["scheduling"].update(automaticRestart=True)),
                              "spot VM needs"),
    "run limit over 120 days": (
        "gcp-t4", _nested(GCE, lambda p: p["scheduling"].update(maxRunDuration={"seconds": 121 * 86400})), "120 days"),
    "dlvm disk under its image": (
        "gcp-t4", _nested(GCE, lambda p: p["bootDisk"]["initializeParams"].update(size=30)), "boot disk of 30"),
    "no such disk type": (
        "gcp-t4", _nested(GCE, lambda p: p["bootDisk"]["initializeParams"].update(type="ssd")), "disk type"),
    "image that is no family path": (
        "gcp-t4", _nested(GCE, lambda p: p["bootDisk"]["initializeParams"].update(image="Deep Learning *")), "no image family"),
    "tpu runtime of another generation": ("tpu", _set(TPU, runtimeVersion="v2-alpha-tpuv6e"), "does not run on"),
    "tpu that is no slice": ("tpu", _set(TPU, acceleratorType="v5litepod-3"), "is no slice"),
    "tpu without a network": ("tpu", _set(TPU, networkConfig={"enableExternalIps": True}), "without a network"),
    "metadata over 256 KB": ("gcp-t4", _nested(GCE, lambda p: p["metadata"].update(big="x" * 300_000)), "256 KB"),
    "instance without a subnet": ("aws", lambda d: plain_of(d, EC2).pop("subnetId"), "default VPC"),
    "instance asking no public address": ("aws", _set(EC2, associatePublicIpAddress=False), "no public address"),
    "instance in another zone than its subnet": ("aws", _set(EC2, availabilityZone="us-east-1f"), "not its subnet"),
    "group of another vpc": ("aws", lambda d: add(d, SG, {"vpcId": "other", "description": "x"}) or plain_of(
        d, EC2).update(vpcSecurityGroupIds=["intruder-id"]), "not in the subnet's VPC"),
    "root volume under the snapshot": (
        "aws", _nested(EC2, lambda p: p["rootBlockDevice"].update(volumeSize=40)), "snapshot"),
    "spot instance that stops": ("aws-spot-user-bucket", _set(EC2, instanceInitiatedShutdownBehavior="stop"), "cannot stop"),
    "p3 instance": ("aws", _set(EC2, instanceType="p3.2xlarge"), "carries"),
    "user data over 16 KB": ("aws", _set(EC2, userData="#cloud-config\n" + "x" * 17_000), "16 KB"),
    "role name over 64": ("aws", _set(ROLE, name="r" * 65), "IAM name"),
    "role description in unicode": ("aws", _set(ROLE, description="reads → writes"), "role description"),
    "key pair of ecdsa": ("aws", _set("aws:ec2/keyPair:KeyPair", publicKey="ecdsa-sha2-nistp256 AAAA x"), "key type"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_each_provider_rule_catches_an_input_the_provider_refuses(case):
    name, tamper, complaint = BROKEN[case]
    declared, inputs = stack(name)
    tamper(declared)
    problems = violations(declared, inputs)
    assert any(complaint in p for p in problems), problems


def test_an_ubuntu_2004_ami_pattern_is_caught():
    declared, inputs = stack("aws")
    old = replace(inputs, image="Deep Learning Base Proprietary Nvidia Driver GPU AMI (Ubuntu 20.04) *")
    assert any("no supported Deep Learning AMI" in p for p in violations(declared, old))
