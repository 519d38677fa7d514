"""What the AWS APIs refuse (or quietly do), as rules over declared resources (sources named per rule)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from infra.stack_inputs import StackInputs
from tests.infra.components.harness import AMI_SNAPSHOT_GB, Declared
from tests.infra.components.provider_rules_common import cidr_problem, number, physical_name

EC2, SG = "aws:ec2/instance:Instance", "aws:ec2/securityGroup:SecurityGroup"
VPC, SUBNET, ROUTES = "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable"
S3 = "aws:s3/bucket:Bucket"


def _of(declared: list[Declared], typ: str) -> list[Declared]:
    return [d for d in declared if d.type == typ]


# EC2's character set for security group names and descriptions and rule descriptions: an apostrophe
# fails CreateSecurityGroup. terraform-provider-aws issue 18874 (the regex the EC2 API validates with);
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html
SG_TEXT = re.compile(r"^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$")


def _security_groups(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Names, descriptions and rules of a group: every rule has a source (a range, a prefix list, a group or
    the group itself: `self`), and protocol -1 (every protocol) takes ports 0-0.
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpPermission.html,
    https://www.pulumi.com/registry/packages/aws/api-docs/ec2/securitygroup/ (ingress: self, protocol -1)"""
    for d in _of(declared, SG):
        p, name = d.plain, physical_name(d, "name")
        description = p.get("description") or ""
        if not 1 <= len(description) <= 255 or not SG_TEXT.match(description):
            yield f"{d.name}: security group description {description!r} is not 1-255 of EC2's characters"
        if len(name) > 255 or name.startswith("sg-") or not SG_TEXT.match(name):
            yield f"{d.name}: security group name {name!r} is refused by EC2"
        for rule in (p.get("ingress") or []) + (p.get("egress") or []):
            sources = [rule.get(k) for k in ("cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "securityGroups", "self")]
            if not any(sources):
                yield f"{d.name}: rule {rule} has no source or destination, which EC2 refuses"
            if rule.get("protocol") in ("-1", "all") and (number(rule.get("fromPort")), number(rule.get("toPort"))) != (0, 0):
                yield f"{d.name}: a rule of every protocol (-1) takes ports 0 to 0, not {rule.get('fromPort')}-{rule.get('toPort')}"
            text = rule.get("description") or ""
            if len(text) > 255 or not SG_TEXT.match(text):
                yield f"{d.name}: rule description {text!r} is not EC2's characters"
            for cidr in rule.get("cidrBlocks") or []:
                if problem := cidr_problem(cidr, 4):
                    yield f"{d.name}: rule source {problem}"
            for cidr in rule.get("ipv6CidrBlocks") or []:
                if problem := cidr_problem(cidr, 6):
                    yield f"{d.name}: rule source {problem}"


_TAG_TEXT = re.compile(r"^[\w\s+\-=.:/@]*$")


def _tags(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Tags: at most 50; keys 1-128 and values 0-256 characters of letters, digits, spaces and + - = . _ : / @;
    no "aws:" keys. https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions"""
    for d in declared:
        if not d.type.startswith("aws:"):
            continue
        for field in ("tags", "volumeTags"):
            tags = d.plain.get(field) or {}
            if len(tags) > 50:
                yield f"{d.name}: {len(tags)} {field} (at most 50)"
            for k, v in tags.items():
                if (not 1 <= len(k) <= 128 or len(str(v)) > 256 or k.lower().startswith("aws:")
                        or not _TAG_TEXT.match(k) or not _TAG_TEXT.match(str(v))):
                    yield f"{d.name}: tag {k}={v!r} is refused by AWS"


def _s3_bucket(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"""
    for d in _of(declared, S3):
        name = physical_name(d, "bucket")
        if (not 3 <= len(name) <= 63 or not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name) or ".." in name
                or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name) or name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
                or name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))):
            yield f"{d.name}: S3 bucket name {name!r} is refused by S3"


_IAM_NAME = re.compile(r"^[\w+=,.@-]+$")
_IAM_TEXT = re.compile(r"^[\t\n\r\x20-\x7e\xa1-\xff]*$")


def _iam(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """Role names at most 64 and profile/policy names 128 of [\\w+=,.@-]; role descriptions 1000 characters
    of its set; trust policy 2048 and inline policies 10240 characters (whitespace not counted).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"""
    limits = {"aws:iam/role:Role": 64, "aws:iam/instanceProfile:InstanceProfile": 128, "aws:iam/rolePolicy:RolePolicy": 128}
    for d in declared:
        if d.type not in limits:
            continue
        name = physical_name(d, "name")
        if len(name) > limits[d.type] or not _IAM_NAME.match(name):
            yield f"{d.name}: IAM name {name!r} is refused by IAM"
        description = d.plain.get("description") or ""
        if len(description) > 1000 or not _IAM_TEXT.match(description):
            yield f"{d.name}: role description {description!r} is refused by IAM"
        for field, most in (("assumeRolePolicy", 2048), ("policy", 10240)):
            if len(re.sub(r"\s", "", d.plain.get(field) or "")) > most:
                yield f"{d.name}: {field} over {most} characters"


def _key_pair(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """EC2 imports ED25519 and RSA keys only; names of at most 255 ASCII characters.
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-key-pairs.html"""
    for d in _of(declared, "aws:ec2/keyPair:KeyPair"):
        name = physical_name(d, "keyName")
        if len(name) > 255 or not name.isascii() or not str(d.plain.get("publicKey", "")).startswith(("ssh-ed25519 ", "ssh-rsa ")):
            yield f"{d.name}: key pair {name!r} or its key type is refused by EC2"


def _vpc(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """VPC and subnet ranges: IPv4 /16 to /28, the subnet inside its VPC's, in a zone of the region.
    https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html"""
    vpcs = {v.id: v.plain for v in _of(declared, VPC)}
    for d in _of(declared, VPC) + _of(declared, SUBNET):
        cidr = d.plain.get("cidrBlock")
        if problem := cidr_problem(cidr, 4):
            yield f"{d.name}: range {problem}"
            continue
        if not 16 <= ipaddress.ip_network(cidr).prefixlen <= 28:
            yield f"{d.name}: range {cidr} is not /16 to /28"
        if d.type == SUBNET:
            vpc = vpcs.get(d.plain.get("vpcId"))
            if vpc is None or cidr_problem(vpc.get("cidrBlock"), 4) or not ipaddress.ip_network(cidr).subnet_of(
                    ipaddress.ip_network(vpc["cidrBlock"])):
                yield f"{d.name}: subnet {cidr} is not inside a VPC of the stack"
            zone = str(d.plain.get("availabilityZone") or "")
            if not re.fullmatch(re.escape(inputs.offer.region) + "[a-z]", zone):
                yield f"{d.name}: subnet zone {zone!r} is not a zone of {inputs.offer.region}"
    for d in _of(declared, ROUTES):
        for route in d.plain.get("routes") or []:
            if problem := cidr_problem(route.get("cidrBlock"), 4):
                yield f"{d.name}: route {problem}"


# GPUs per instance type: https://aws.amazon.com/ec2/instance-types/ (Accelerated Computing).
GPUS = {"g4dn.xlarge": ("T4", 1), "g4dn.12xlarge": ("T4", 4), "g4dn.metal": ("T4", 8),
        "g5.xlarge": ("A10G", 1), "g5.12xlarge": ("A10G", 4), "g5.48xlarge": ("A10G", 8),
        "g6.xlarge": ("L4", 1), "g6.12xlarge": ("L4", 4), "g6.48xlarge": ("L4", 8),
        "p3.2xlarge": ("V100", 1), "p3.8xlarge": ("V100", 4), "p3.16xlarge": ("V100", 8),
        "p4d.24xlarge": ("A100-40GB", 8), "p4de.24xlarge": ("A100-80GB", 8), "p5.48xlarge": ("H100", 8)}
# Families the Ubuntu 22.04 Deep Learning Base AMIs support (supported_ec2_instances in their release
# notes, https://docs.aws.amazon.com/dlami/latest/devguide/appendix-ami-release-notes.html); p3 is in
# none still supported, and Ubuntu 20.04 left the DLAMI support table.
DLAMI_FAMILIES = ("g4dn", "g5", "g6", "p4d", "p4de", "p5")


def _instance(declared: list[Declared], inputs: StackInputs) -> Iterator[str]:
    """RunInstances: a subnet (no default VPC is assumed: VPCIdNotSpecified where there is none), groups of
    that subnet's VPC, a public address asked for, the root volume within gp3's 1-16384 GiB and never under
    the AMI's snapshot, spot one-time instances that terminate, IMDS options, user data within 16 KB.
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html,
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/interruption-behavior.html,
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html"""
    subnets, groups = {s.id: s.plain for s in _of(declared, SUBNET)}, {g.id: g.plain for g in _of(declared, SG)}
    for d in _of(declared, EC2):
        p, offer = d.plain, inputs.offer
        machine = p.get("instanceType", "")
        if GPUS.get(machine) != (offer.accelerator, offer.count):
            yield f"{d.name}: {machine} carries {GPUS.get(machine)}, not the offer's {offer.accelerator}:{offer.count}"
        if machine.split(".")[0] not in DLAMI_FAMILIES or "20.04" in (inputs.image or offer.image):
            yield f"{d.name}: no supported Deep Learning AMI ({inputs.image or offer.image!r}) runs {machine}"
        subnet = subnets.get(p.get("subnetId"))
        if subnet is None:
            yield f"{d.name}: instance without a subnet of the stack (it would need the account's default VPC)"
        elif p.get("availabilityZone") and p["availabilityZone"] != subnet.get("availabilityZone"):
            yield f"{d.name}: instance zone {p['availabilityZone']} is not its subnet's"
        for group in p.get("vpcSecurityGroupIds") or []:
            if subnet is None or (groups.get(group) or {}).get("vpcId") != subnet.get("vpcId"):
                yield f"{d.name}: security group {group} is not in the subnet's VPC"
        if subnet is not None and not subnet.get("mapPublicIpOnLaunch") and p.get("associatePublicIpAddress") is not True:
            yield f"{d.name}: no public address: the subnet maps none and the instance asks for none"
        root = p.get("rootBlockDevice") or {}
        size = number(root.get("volumeSize") or 0)
        if not max(1, AMI_SNAPSHOT_GB) <= size <= 16384:
            yield f"{d.name}: root volume of {size} GiB is under the AMI's {AMI_SNAPSHOT_GB} GiB snapshot or over 16 TiB"
        market = p.get("instanceMarketOptions")
        if market:
            spot = market.get("spotOptions") or {}
            if spot.get("spotInstanceType") == "one-time" and spot.get("instanceInterruptionBehavior") != "terminate":
                yield f"{d.name}: a one-time spot instance can only terminate when interrupted"
            if p.get("instanceInitiatedShutdownBehavior") != "terminate":
                yield f"{d.name}: a one-time spot instance cannot stop on shutdown"
        metadata = p.get("metadataOptions") or {}
        if metadata.get("httpTokens") not in (None, "optional", "required") or not 1 <= number(
                metadata.get("httpPutResponseHopLimit") or 1) <= 64:
            yield f"{d.name}: metadata options {metadata} are refused by EC2"
        if len(str(p.get("userData") or "").encode()) > 16 * 1024:
            yield f"{d.name}: user data over 16 KB"


AWS_RULES = (_security_groups, _tags, _s3_bucket, _iam, _key_pair, _vpc, _instance)
