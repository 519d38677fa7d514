"""A GPU EC2 instance for one run, from an AWS Deep Learning AMI, with the narrowest rights that work:
SSH from the user's address only, an instance role that reads the dataset and writes the outputs."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.components.aws_network import run_network
from infra.components.boot_script import aws_cloud_config
from infra.components.machine import MachineComponent
from infra.errors import BadInput
from infra.stack_inputs import StackInputs

AMI_OWNER = "amazon"
AMI_SSH_USER = "ubuntu"  # the Ubuntu Deep Learning AMIs log in as ubuntu
# EC2 accepts only these characters in a security group's and a rule's description (an apostrophe
# fails the whole `pulumi up`): terraform-provider-aws issue 18874, and the EC2 API reference,
# CreateSecurityGroup GroupDescription / IpRange Description.
SSH_RULE_DESCRIPTION = "SSH from the user address only"
_OBJECT_WRITE_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]


def _assume_role_by_ec2() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _bucket_statements(bucket: str, prefix: str, object_actions: list[str]) -> list[dict[str, object]]:
    """List the bucket under `prefix` only, and act on the objects under it."""
    # "runs/a" must not cover "runs/a2/": a prefix is a folder.
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    listing: dict[str, object] = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    if prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    objects = {"Effect": "Allow", "Action": object_actions, "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"}
    return [listing, objects]


def bucket_policy(inputs: StackInputs, output_bucket: str) -> str:
    """The instance role's only rights: read the dataset, read and write the outputs."""
    statements = []
    if inputs.dataset_bucket:
        statements += _bucket_statements(inputs.dataset_bucket, inputs.dataset_prefix, ["s3:GetObject"])
    statements += _bucket_statements(output_bucket, inputs.output_store_prefix, _OBJECT_WRITE_ACTIONS)
    statements.append(
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucketMultipartUploads"],
            "Resource": f"arn:aws:s3:::{output_bucket}",
        }
    )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _private_bucket(base: str, inputs: StackInputs, child: pulumi.ResourceOptions) -> aws.s3.Bucket:
    """The run's output bucket: never public, encrypted, owned by the account alone."""
    region = inputs.offer.region
    bucket = aws.s3.Bucket(base, force_destroy=True, region=region, tags=inputs.labels, opts=child)
    aws.s3.BucketPublicAccessBlock(
        f"{base}-no-public",
        bucket=bucket.id,
        region=region,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{base}-encryption",
        bucket=bucket.id,
        region=region,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=(
                    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256",
                    )
                ),
            )
        ],
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        f"{base}-owner",
        bucket=bucket.id,
        region=region,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    return bucket


def _ssh_ingress(cidr: str) -> aws.ec2.SecurityGroupIngressArgs:
    ipv6 = ":" in cidr
    return aws.ec2.SecurityGroupIngressArgs(
        protocol="tcp",
        from_port=22,
        to_port=22,
        description=SSH_RULE_DESCRIPTION,
        cidr_blocks=None if ipv6 else [cidr],
        ipv6_cidr_blocks=[cidr] if ipv6 else None,
    )


PEER_RULE_DESCRIPTION = "the run machines to each other, every port"


def _peer_ingress() -> aws.ec2.SecurityGroupIngressArgs:
    """The run's machines reach each other on every port (torchrun's c10d rendezvous, NCCL, gloo): the
    source is the group itself (`self`), so only instances in this group match, never an address range.
    Inline, like the SSH rule: a separate SecurityGroupIngressRule next to inline rules makes the two
    fight over the group's rules (pulumi-aws SecurityGroup docs). A protocol of -1 takes ports 0-0."""
    return aws.ec2.SecurityGroupIngressArgs(protocol="-1", from_port=0, to_port=0, self=True,
                                            description=PEER_RULE_DESCRIPTION)


def root_volume_gb(ami: aws.ec2.GetAmiResult, asked_gb: int) -> int:
    """The root volume's size: the asked one, unless the image's own snapshot is larger, which EC2
    refuses ("volume size is smaller than the snapshot"): then one sentence before any instance."""
    root = next((m for m in ami.block_device_mappings or [] if m.device_name == ami.root_device_name), None)
    snapshot_gb = int((root.ebs or {}).get("volume_size") or 0) if root else 0
    if snapshot_gb > asked_gb:
        raise BadInput(f"the image {ami.name} needs a disk of at least {snapshot_gb} GB, not {asked_gb}: "
                       f"give --disk-gb {snapshot_gb} or more.")
    return asked_gb


def _market(spot: bool) -> tuple[aws.ec2.InstanceInstanceMarketOptionsArgs | None, str]:
    """Market options and shutdown behaviour: a one-time spot instance cannot stop, only terminate."""
    if not spot:
        return None, "stop"  # a stopped instance costs its disk only
    options = aws.ec2.InstanceInstanceMarketOptionsArgs(
        market_type="spot",
        spot_options=aws.ec2.InstanceInstanceMarketOptionsSpotOptionsArgs(
            spot_instance_type="one-time",
            instance_interruption_behavior="terminate",
        ),
    )
    return options, "terminate"


class AwsGpuMachine(MachineComponent):

    def __init__(self, name: str, inputs: StackInputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainrig:aws:GpuMachine", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        offer, labels, region = inputs.offer, inputs.labels, inputs.offer.region
        base = f"trainrig-{inputs.run_id}"

        ami = aws.ec2.get_ami_output(
            most_recent=True,
            owners=[AMI_OWNER],
            # x86_64: the same image names exist for ARM64 (g5g), which these instance types cannot boot.
            filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[inputs.image or offer.image]),
                     aws.ec2.GetAmiFilterArgs(name="architecture", values=["x86_64"])],
            region=region,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        net = run_network(base, inputs, self)
        key = aws.ec2.KeyPair(
            base,
            public_key=inputs.ssh_public_key.strip(),
            region=region,
            tags=labels,
            opts=child,
        )
        group = aws.ec2.SecurityGroup(
            base,
            description=f"trainrig run {inputs.run_id}: {SSH_RULE_DESCRIPTION}",
            vpc_id=net.vpc.id,
            region=region,
            ingress=[_ssh_ingress(inputs.ssh_from)] + ([_peer_ingress()] if inputs.host_count > 1 else []),
            # Open egress: pip, the dataset and output buckets, the AMI's package mirrors.
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            tags=labels,
            opts=child,
        )

        if inputs.output_store_bucket is None:
            self.output_bucket = _private_bucket(base, inputs, child).bucket
        else:
            self.output_bucket = pulumi.Output.from_input(inputs.output_store_bucket)

        role = aws.iam.Role(
            f"{base}-role",
            description=f"trainrig run {inputs.run_id}: reads its dataset, writes its outputs",
            assume_role_policy=_assume_role_by_ec2(),
            tags=labels,
            opts=child,
        )
        rights = aws.iam.RolePolicy(
            f"{base}-buckets",
            role=role.id,
            policy=self.output_bucket.apply(lambda bucket: bucket_policy(inputs, bucket)),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(base, role=role.name, tags=labels, opts=child)

        market, shutdown_behavior = _market(inputs.spot)
        # One machine keeps the run's name (an existing stack's instance is not replaced); several carry their rank.
        names = [base] if inputs.nodes == 1 else [f"{base}-n{rank}" for rank in range(inputs.nodes)]
        instances = [aws.ec2.Instance(
            name,
            ami=ami.id,
            instance_type=offer.machine_type,
            region=region,
            key_name=key.key_name,
            subnet_id=net.subnet.id,  # the run's own subnet fixes the zone; no default VPC needed
            vpc_security_group_ids=[group.id],
            associate_public_ip_address=True,  # asked for: the run's subnet gives none by default
            iam_instance_profile=profile.name,
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=ami.apply(lambda image: root_volume_gb(image, inputs.disk_gb)),
                volume_type="gp3",
                encrypted=True,
                delete_on_termination=True,
            ),
            # IMDSv2 only, one hop: a container on the machine cannot borrow the role's credentials.
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            instance_market_options=market,
            instance_initiated_shutdown_behavior=shutdown_behavior,
            # A secret: it holds the private host key.
            user_data=pulumi.Output.secret(aws_cloud_config(inputs.host_key, inputs.failsafe_minutes, region)),
            tags={**labels, "Name": name},
            volume_tags=labels,
            # The runner starts pulling the dataset as soon as it logs in: the rights must be there;
            # the boot needs the route out (cloud-init's packages). Destroyed first, before the network.
            # The AMI lookup finds the newest image at every `pulumi up`; a newer one must not
            # replace a machine that is training.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[rights, net.route],
                                        ignore_changes=["ami"]),
        ) for name in names]
        pairs = pulumi.Output.all(*[pulumi.Output.all(vm.public_ip, vm.private_ip) for vm in instances])
        self._set_nodes(inputs, pairs, inputs.nodes)
        self._publish(instances[0].public_ip, AMI_SSH_USER, inputs, self.output_bucket)
