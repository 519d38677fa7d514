"""The security policy over whole stacks: every stack trainrig makes passes it, and each rule catches a
stack that breaks it (so no rule can pass by checking nothing)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from infra.components.aws_gpu_machine import AwsGpuMachine
from infra.components.gcp_gpu_machine import GcpGpuMachine
from infra.components.gcp_tpu_machine import GcpTpuMachine
from infra.stack_inputs import StackInputs
from tests.infra.components.harness import (
    AWS_T4,
    GCP_A100,
    GCP_T4,
    GCP_TPU,
    Declared,
    deploy,
    make_inputs,
    unwrap,
)
from tests.infra.components.policy import violations

COMPONENTS = {"gcp-gpu": GcpGpuMachine, "gcp-tpu": GcpTpuMachine, "aws-gpu": AwsGpuMachine}
STACKS = {
    "gcp-t4": ("gcp-gpu", GCP_T4, {}),
    "gcp-a100-spot": ("gcp-gpu", GCP_A100, {"spot": True}),
    "gcp-user-bucket": ("gcp-gpu", GCP_T4, {"output_store_bucket": "my-outputs", "dataset_bucket": None}),
    "tpu": ("gcp-tpu", GCP_TPU, {}),
    "tpu-spot": ("gcp-tpu", GCP_TPU, {"spot": True}),
    "aws": ("aws-gpu", AWS_T4, {}),
    "aws-spot-user-bucket": ("aws-gpu", AWS_T4, {"spot": True, "output_store_bucket": "my-outputs"}),
}
_deployed: dict[str, tuple[list[Declared], StackInputs]] = {}


def stack(name: str) -> tuple[list[Declared], StackInputs]:
    """A fresh copy of a deployed stack (deployed once per session; tests may tamper with the copy)."""
    if name not in _deployed:
        component, offer, changes = STACKS[name]
        inputs = make_inputs(offer, **changes)
        _deployed[name] = (deploy(lambda: COMPONENTS[component]("yolo-coco", inputs)).declared, inputs)
    declared, inputs = _deployed[name]
    return copy.deepcopy(declared), inputs


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_trainrig_makes_follows_the_policy(name):
    declared, inputs = stack(name)
    assert violations(declared, inputs) == []


@pytest.mark.parametrize("component,offer", [("gcp-gpu", GCP_T4), ("gcp-tpu", GCP_TPU), ("aws-gpu", AWS_T4)])
def test_ssh_from_the_whole_internet_is_caught(component, offer):
    inputs = make_inputs(offer, ssh_from="0.0.0.0/0")
    declared = deploy(lambda: COMPONENTS[component]("yolo-coco", inputs)).declared
    assert any("whole internet" in problem for problem in violations(declared, inputs))


def plain_of(declared: list[Declared], typ: str) -> dict:
    """The inputs of the one resource of `typ`, secrets unwrapped, to tamper with."""
    [found] = [d for d in declared if d.type == typ]
    found.inputs = unwrap(found.inputs)
    return found.inputs


def set_policy(declared: list[Declared], change: Callable[[dict], None]) -> None:
    role_policy = plain_of(declared, "aws:iam/rolePolicy:RolePolicy")
    document = json.loads(role_policy["policy"])
    change(document)
    role_policy["policy"] = json.dumps(document)


def add(declared: list[Declared], typ: str, inputs: dict) -> None:
    declared.append(Declared(typ, "intruder", "intruder-id", inputs))


FIREWALL = "gcp:compute/firewall:Firewall"
GCE = "gcp:compute/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
EC2 = "aws:ec2/instance:Instance"
TAMPERING: dict[str, tuple[str, Callable[[list[Declared]], None], str]] = {
    "firewall from another address": (
        "gcp-t4",
        lambda d: plain_of(d, FIREWALL).update(sourceRanges=["203.0.113.0/24"]),
        "not only 198.51.100.7/32",
    ),
    "firewall on port 80": (
        "gcp-t4",
        lambda d: plain_of(d, FIREWALL).update(allows=[{"protocol": "tcp", "ports": ["22", "80"]}]),
        "not only tcp:22",
    ),
    "firewall for every machine": (
        "tpu",
        lambda d: plain_of(d, FIREWALL).pop("targetTags"),
        "not only the run's tag",
    ),
    "security group on all ports": (
        "aws",
        lambda d: plain_of(d, SG)["ingress"][0].update(fromPort=0, toPort=65535),
        "not only tcp:22",
    ),
    "security group open to ipv6": (
        "aws",
        lambda d: plain_of(d, SG)["ingress"][0].update(ipv6CidrBlocks=["::/0"]),
        "whole internet",
    ),
    "extra ingress rule resource": (
        "aws",
        lambda d: add(d, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", {}),
        "not allowed",
    ),
    "vm on the default network": (
        "gcp-t4",
        lambda d: plain_of(d, GCE)["networkInterfaces"][0].update(network="default"),
        "not the run's own custom-mode network",
    ),
    "tpu on the default network": (
        "tpu",
        lambda d: plain_of(d, "gcp:tpu/v2Vm:V2Vm")["networkConfig"].update(network="default"),
        "not the run's own custom-mode network",
    ),
    "firewall on the default network": (
        "gcp-a100-spot",
        lambda d: plain_of(d, FIREWALL).update(network="default"),
        "not the run's own custom-mode network",
    ),
    "run network in auto mode": (
        "gcp-t4",
        lambda d: plain_of(d, "gcp:compute/network:Network").update(autoCreateSubnetworks=True),
        "not the run's own custom-mode network",
    ),
    "instance in the default vpc": (
        "aws",
        lambda d: plain_of(d, EC2).pop("subnetId"),
        "outside the run's own VPC",
    ),
    "security group in the default vpc": (
        "aws-spot-user-bucket",
        lambda d: plain_of(d, SG).pop("vpcId"),
        "outside the run's own VPC",
    ),
    "gcs bucket with fine-grained acls": (
        "gcp-t4",
        lambda d: plain_of(d, "gcp:storage/bucket:Bucket").pop("uniformBucketLevelAccess"),
        "uniform",
    ),
    "gcs bucket that may go public": (
        "tpu",
        lambda d: plain_of(d, "gcp:storage/bucket:Bucket").update(publicAccessPrevention="inherited"),
        "public access prevention",
    ),
    "s3 bucket with a public policy allowed": (
        "aws",
        lambda d: plain_of(d, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").update(
            blockPublicPolicy=False
        ),
        "public access blocks",
    ),
    "s3 bucket not encrypted": (
        "aws",
        lambda d: d.remove(next(x for x in d if "ServerSideEncryption" in x.type)),
        "encryption",
    ),
    "s3 bucket with acls": (
        "aws",
        lambda d: plain_of(d, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")["rule"].update(
            objectOwnership="ObjectWriter"
        ),
        "BucketOwnerEnforced",
    ),
    "project-level role": (
        "gcp-t4",
        lambda d: add(d, "gcp:projects/iAMMember:IAMMember", {"role": "roles/editor"}),
        "project-level",
    ),
    "bucket admin role": (
        "tpu",
        lambda d: [
            m.inputs.update(role="roles/storage.admin") for m in d if m.type.endswith("BucketIAMMember")
        ],
        "broader than object",
    ),
    "wildcard action": (
        "aws",
        lambda d: set_policy(d, lambda doc: doc["Statement"][1].update(Action="s3:*")),
        "wildcard action",
    ),
    "wildcard resource": (
        "aws",
        lambda d: set_policy(d, lambda doc: doc["Statement"][0].update(Resource="*")),
        "beyond the run's buckets",
    ),
    "role anyone may assume": (
        "aws",
        lambda d: plain_of(d, "aws:iam/role:Role").update(
            assumeRolePolicy=json.dumps(
                {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
            )
        ),
        "not by EC2 alone",
    ),
    "admin managed policy": (
        "aws",
        lambda d: plain_of(d, "aws:iam/role:Role").update(
            managedPolicyArns=["arn:aws:iam::aws:policy/AdministratorAccess"]
        ),
        "managed policies",
    ),
    "policy attachment": (
        "aws",
        lambda d: add(d, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", {}),
        "not allowed",
    ),
    "vm without run label": (
        "gcp-t4",
        lambda d: plain_of(d, GCE)["labels"].pop("trainrig-run"),
        "lacks the labels",
    ),
    "bucket without dataset label": (
        "tpu",
        lambda d: plain_of(d, "gcp:storage/bucket:Bucket")["labels"].pop("trainrig-dataset"),
        "lacks the labels",
    ),
    "security group without managed-by tag": (
        "aws",
        lambda d: plain_of(d, SG)["tags"].pop("managed-by"),
        "lacks the tags",
    ),
    "key pair with another run's tag": (
        "aws",
        lambda d: plain_of(d, "aws:ec2/keyPair:KeyPair")["tags"].update({"trainrig-run": "other"}),
        "lacks the tags",
    ),
    "gpu vm that live-migrates": (
        "gcp-a100-spot",
        lambda d: plain_of(d, GCE)["scheduling"].update(onHostMaintenance="MIGRATE"),
        "TERMINATE",
    ),
    "startup script in plain metadata": ("gcp-t4", lambda d: plain_of(d, GCE), "private host key"),
    "tpu startup script in plain metadata": (
        "tpu",
        lambda d: plain_of(d, "gcp:tpu/v2Vm:V2Vm"),
        "private host key",
    ),
    "user data in plain": ("aws", lambda d: plain_of(d, EC2), "private host key"),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_each_rule_catches_a_stack_that_breaks_it(case):
    name, tamper, complaint = TAMPERING[case]
    declared, inputs = stack(name)
    tamper(declared)
    problems = violations(declared, inputs)
    assert any(complaint in problem for problem in problems), problems
