"""The security rules every run's stack must follow, checked over what the components declared.
`violations()` returns one sentence per broken rule, so a test can show it passes a good stack and
catches a bad one."""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterator

from infra.stack_inputs import MANAGED_BY, StackInputs
from tests.infra.components.harness import Declared, public_strings

WORLD = ("0.0.0.0/0", "::/0")
BUCKET_ROLES = {"roles/storage.objectViewer", "roles/storage.objectAdmin"}
FIREWALL = "gcp:compute/firewall:Firewall"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
GCP_BUCKET = "gcp:storage/bucket:Bucket"
GCP_BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
AWS_BUCKET = "aws:s3/bucket:Bucket"
AWS_ROLE = "aws:iam/role:Role"
AWS_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# Anything that would open a port or grant rights outside the resources reviewed below.
UNREVIEWED = (
    "securityGroupRule",
    "SecurityGroupIngressRule",
    "PolicyAttachment",
    "bucketPolicy",
    "bucketAcl",
)


def required_labels(inputs: StackInputs) -> dict[str, str]:
    return {
        "trainrig-run": inputs.run_id,
        "trainrig-code": inputs.code_name,
        "trainrig-dataset": inputs.dataset_name,
        "managed-by": MANAGED_BY,
    }


def violations(declared: list[Declared], inputs: StackInputs) -> list[str]:
    checks = (_network, _own_network, _buckets, _gcp_iam, _aws_iam, _labels, _maintenance, _secrets)
    return [problem for check in checks for problem in check(declared, inputs)]


def _network(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    tag = f"trainrig-{inputs.run_id}"
    for d in declared:
        if any(word in d.type for word in UNREVIEWED):
            yield f"{d.name}: {d.type} is not allowed in a run's stack"
        p = d.plain
        if d.type == FIREWALL and _is_peer_rule(p):
            yield from _peer_firewall(d, inputs, tag)
        elif d.type == FIREWALL:
            sources = p.get("sourceRanges") or []
            if p.get("direction", "INGRESS") != "INGRESS":
                yield f"{d.name}: firewall is not an ingress rule"
            if any(s in WORLD for s in sources) or not sources:
                yield f"{d.name}: firewall open to the whole internet ({sources})"
            if set(sources) - {inputs.ssh_from}:
                yield f"{d.name}: firewall lets in {sources}, not only {inputs.ssh_from}"
            if p.get("targetTags") != [tag]:
                yield f"{d.name}: firewall targets {p.get('targetTags')}, not only the run's tag {tag}"
            for allow in p.get("allows") or []:
                if allow.get("protocol") != "tcp" or allow.get("ports") != ["22"]:
                    yield f"{d.name}: firewall opens {allow}, not only tcp:22"
        if d.type == SECURITY_GROUP:
            for rule in p.get("ingress") or []:
                if rule.get("self") is True:
                    yield from _peer_ingress(d, rule, inputs)
                    continue
                sources = (rule.get("cidrBlocks") or []) + (rule.get("ipv6CidrBlocks") or [])
                if any(s in WORLD for s in sources) or not sources:
                    yield f"{d.name}: security group open to the whole internet ({sources})"
                if set(sources) - {inputs.ssh_from}:
                    yield f"{d.name}: security group lets in {sources}, not only {inputs.ssh_from}"
                if (rule.get("protocol"), rule.get("fromPort"), rule.get("toPort")) != ("tcp", 22, 22):
                    yield f"{d.name}: security group opens {rule}, not only tcp:22"


def _is_peer_rule(p: dict) -> bool:
    return bool(p.get("sourceTags") or p.get("sourceServiceAccounts"))


def _peer_firewall(d: Declared, inputs: StackInputs, tag: str) -> Iterator[str]:
    """The run's machines to each other: sources are the run's own tag and nothing else (no address range,
    which GCP would add to the tag's machines, and a rule without any source is open to 0.0.0.0/0), only
    when the run has several machines."""
    p = d.plain
    if inputs.host_count < 2:
        yield f"{d.name}: a rule between machines in a run of one machine"
    if p.get("sourceRanges") or p.get("sourceServiceAccounts") or p.get("sourceTags") != [tag]:
        yield (f"{d.name}: peer rule lets in {p.get('sourceRanges') or p.get('sourceServiceAccounts') or p.get('sourceTags')}, "
               f"not only the run's tag {tag}")
    if p.get("targetTags") != [tag] or p.get("direction", "INGRESS") != "INGRESS":
        yield f"{d.name}: peer rule targets {p.get('targetTags')}, not only the run's tag {tag}"


def _peer_ingress(d: Declared, rule: dict, inputs: StackInputs) -> Iterator[str]:
    """The group's own members to each other (`self`), nothing else in the same rule."""
    if inputs.host_count < 2:
        yield f"{d.name}: a rule between machines in a run of one machine"
    others = [rule.get(k) for k in ("cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "securityGroups")]
    if any(others):
        yield f"{d.name}: peer rule also lets in {others}"


def _own_network(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """The machine and its SSH rule sit on the run's own network, never the project's `default` one,
    whose default-allow-ssh rule lets tcp:22 in from 0.0.0.0/0 to every instance
    (https://cloud.google.com/vpc/docs/firewalls#more_rules_default_vpc); on AWS, in the run's own VPC."""
    networks = {d.id for d in declared if d.type == "gcp:compute/network:Network"
                and d.plain.get("autoCreateSubnetworks") is False}
    subnets = {d.id for d in declared if d.type == "gcp:compute/subnetwork:Subnetwork" and d.plain.get("network") in networks}
    for d in declared:
        p = d.plain
        if d.type == FIREWALL and p.get("network") not in networks:
            yield f"{d.name}: firewall on {p.get('network')!r}, not the run's own custom-mode network"
        if d.type == "gcp:compute/instance:Instance":
            for nic in p.get("networkInterfaces") or []:
                if nic.get("network") not in networks or nic.get("subnetwork") not in subnets:
                    yield f"{d.name}: VM on {nic.get('network')!r}, not the run's own custom-mode network"
        if d.type == "gcp:tpu/v2Vm:V2Vm":
            config = p.get("networkConfig") or {}
            if config.get("network") not in networks or config.get("subnetwork") not in subnets:
                yield f"{d.name}: TPU VM on {config.get('network')!r}, not the run's own custom-mode network"
    vpcs = {d.id for d in declared if d.type == "aws:ec2/vpc:Vpc"}
    aws_subnets = {d.id for d in declared if d.type == "aws:ec2/subnet:Subnet" and d.plain.get("vpcId") in vpcs}
    for d in declared:
        if d.type == SECURITY_GROUP and d.plain.get("vpcId") not in vpcs:
            yield f"{d.name}: security group outside the run's own VPC"
        if d.type == "aws:ec2/instance:Instance" and d.plain.get("subnetId") not in aws_subnets:
            yield f"{d.name}: instance outside the run's own VPC"


def _buckets(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    for d in declared:
        p = d.plain
        if d.type == GCP_BUCKET:
            if p.get("uniformBucketLevelAccess") is not True:
                yield f"{d.name}: bucket without uniform bucket-level access"
            if p.get("publicAccessPrevention") != "enforced":
                yield f"{d.name}: bucket without public access prevention"
        if d.type == AWS_BUCKET:
            if p.get("acl") or p.get("policy") or p.get("grants"):
                yield f"{d.name}: bucket with its own ACL, grants or policy"
            yield from _aws_bucket_guards(declared, d)


def _aws_bucket_guards(declared: list[Declared], bucket: Declared) -> Iterator[str]:
    guards = {
        g.type.split(":")[-1]: g.plain
        for g in declared
        if g.plain.get("bucket") == bucket.id and g is not bucket
    }
    block = guards.get("BucketPublicAccessBlock", {})
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    if not all(block.get(flag) is True for flag in flags):
        yield f"{bucket.name}: bucket without all four public access blocks ({block})"
    rules = guards.get("BucketServerSideEncryptionConfiguration", {}).get("rules") or [{}]
    if not rules[0].get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm"):
        yield f"{bucket.name}: bucket without default encryption"
    owner = guards.get("BucketOwnershipControls", {}).get("rule", {}).get("objectOwnership")
    if owner != "BucketOwnerEnforced":
        yield f"{bucket.name}: bucket ownership is {owner}, not BucketOwnerEnforced (ACLs off)"


def _gcp_iam(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    for d in declared:
        if not d.type.startswith("gcp:") or "IAM" not in d.type:
            continue
        p = d.plain
        if d.type != GCP_BUCKET_MEMBER:
            yield f"{d.name}: {d.type} grants rights beyond one bucket (project-level or broader)"
        elif p.get("role") not in BUCKET_ROLES:
            yield f"{d.name}: bucket role {p.get('role')} is broader than object read/write"
        elif not str(p.get("member", "")).startswith("serviceAccount:"):
            yield f"{d.name}: bucket right given to {p.get('member')}, not to the run's service account"


def _aws_iam(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    for d in declared:
        p = d.plain
        if d.type == AWS_ROLE:
            if p.get("managedPolicyArns"):
                yield f"{d.name}: role with managed policies {p['managedPolicyArns']}"
            for statement in json.loads(p.get("assumeRolePolicy") or "{}").get("Statement", []):
                if statement.get("Principal") != {"Service": "ec2.amazonaws.com"}:
                    yield f"{d.name}: role assumable by {statement.get('Principal')}, not by EC2 alone"
        if d.type == AWS_ROLE_POLICY:
            for statement in json.loads(p.get("policy") or "{}").get("Statement", []):
                actions, resources = _as_list(statement.get("Action")), _as_list(statement.get("Resource"))
                if (
                    statement.get("Effect") != "Allow"
                    or "NotAction" in statement
                    or "NotResource" in statement
                ):
                    yield f"{d.name}: statement {statement} is not a plain allow"
                if any("*" in action for action in actions):
                    yield f"{d.name}: wildcard action in {actions}"
                if any(r in ("*", "arn:aws:s3:::*") or not r.startswith("arn:aws:s3:::") for r in resources):
                    yield f"{d.name}: statement reaches beyond the run's buckets: {resources}"


def _as_list(value: object) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _labels(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    wanted = required_labels(inputs)
    for d in declared:
        field = {"gcp": "labels", "aws": "tags"}.get(d.type.split(":")[0])
        if field is None or not _accepts(d.type, field):
            continue
        have = d.plain.get(field) or {}
        missing = {k: v for k, v in wanted.items() if have.get(k) != v}
        if missing:
            yield f"{d.name}: {d.type} lacks the {field} {missing}"


def _accepts(token: str, field: str) -> bool:
    """Whether the resource type of `token` ("gcp:compute/instance:Instance") takes `field`."""
    package, module_path, name = token.split(":")
    module = importlib.import_module(f"pulumi_{package}.{module_path.split('/')[0]}")
    args = getattr(module, f"{name}Args", None) or getattr(module, f"{name}InitArgs")
    return field in inspect.signature(args.__init__).parameters


def _maintenance(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    # A GPU VM cannot live-migrate: without TERMINATE, GCP refuses it or it loses its GPU.
    for d in declared:
        scheduling = d.plain.get("scheduling") or {}
        if d.type == "gcp:compute/instance:Instance" and scheduling.get("onHostMaintenance") != "TERMINATE":
            yield f"{d.name}: GPU VM without on_host_maintenance=TERMINATE"


def _secrets(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    key_lines = [
        line for line in inputs.host_key.private_openssh.splitlines() if line and "-----" not in line
    ]
    for d in declared:
        for text in public_strings(d.inputs):
            if any(line in text for line in key_lines):
                yield f"{d.name}: the private host key appears in a plain (not secret) input"
