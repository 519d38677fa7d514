"""The AWS GPU instance component under Pulumi's mocks."""

import json

import pytest

from dataclasses import replace

from infra.components.aws_gpu_machine import AwsGpuMachine
from infra.errors import BadInput
from tests.infra.components.harness import (
    AWS_IP,
    AWS_T4,
    CLIENT_KEY,
    FAKE_AMI,
    AMI_SNAPSHOT_GB,
    HOST_KEY,
    Deployment,
    deploy,
    is_secret,
    make_inputs,
)

INSTANCE = "aws:ec2/instance:Instance"
SUBNET = "aws:ec2/subnet:Subnet"
OUTPUT_BUCKET = "trainrig-yolo-coco-a1b2c3d"


def ec2(**changes) -> Deployment:
    return deploy(lambda: AwsGpuMachine("yolo-coco", make_inputs(AWS_T4, **changes)))


@pytest.fixture(scope="module")
def on_demand() -> Deployment:
    return ec2()


def policy_of(stack: Deployment) -> list[dict]:
    return json.loads(stack.one("aws:iam/rolePolicy:RolePolicy").plain["policy"])["Statement"]


def test_declares_instance_key_group_role_and_a_guarded_bucket(on_demand):
    assert sorted(d.type.split(":")[-1] for d in on_demand.declared) == sorted(
        [
            "GpuMachine",
            "KeyPair",
            "SecurityGroup",
            "Bucket",
            "BucketPublicAccessBlock",
            "BucketServerSideEncryptionConfiguration",
            "BucketOwnershipControls",
            "Role",
            "RolePolicy",
            "InstanceProfile",
            "Instance",
            "Vpc",
            "InternetGateway",
            "Subnet",
            "RouteTable",
            "RouteTableAssociation",
        ]
    )
    children = [urn for urn in on_demand.urns if "::pulumi:pulumi:Stack$" not in urn]
    assert len(children) == 15 and all("::trainrig:aws:GpuMachine$" in urn for urn in children)


def test_ami_is_the_newest_amazon_image_matching_the_offer_pattern(on_demand):
    [lookup] = on_demand.calls
    assert lookup.token == "aws:ec2/getAmi:getAmi"
    assert lookup.args["mostRecent"] is True
    assert lookup.args["owners"] == ["amazon"]
    assert lookup.args["filters"] == [{"name": "name", "values": [AWS_T4.image]}, {"name": "architecture", "values": ["x86_64"]}]
    assert on_demand.one(INSTANCE).plain["ami"] == FAKE_AMI


def test_image_override_changes_the_ami_pattern():
    [lookup] = ec2(image="Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *").calls
    assert lookup.args["filters"][0]["values"] == [
        "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
    ]


def test_instance_type_zone_disk_and_metadata_service(on_demand):
    vm = on_demand.one(INSTANCE).plain
    assert vm["instanceType"] == "g4dn.xlarge"
    assert "availabilityZone" not in vm  # the run's subnet places it
    assert on_demand.one(SUBNET).plain["availabilityZone"] == "us-east-1a"
    assert vm["rootBlockDevice"] == {
        "volumeSize": 150,
        "volumeType": "gp3",
        "encrypted": True,
        "deleteOnTermination": True,
    }
    assert vm["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    assert vm["associatePublicIpAddress"] is True


def test_on_demand_instance_stops_when_it_powers_off(on_demand):
    vm = on_demand.one(INSTANCE).plain
    assert vm["instanceInitiatedShutdownBehavior"] == "stop"
    assert "instanceMarketOptions" not in vm


def test_spot_instance_is_one_time_and_terminates():
    vm = ec2(spot=True).one(INSTANCE).plain
    assert vm["instanceInitiatedShutdownBehavior"] == "terminate"
    assert vm["instanceMarketOptions"] == {
        "marketType": "spot",
        "spotOptions": {"spotInstanceType": "one-time", "instanceInterruptionBehavior": "terminate"},
    }


def test_user_data_is_a_secret_cloud_config_with_the_host_key(on_demand):
    vm = on_demand.one(INSTANCE)
    assert is_secret(vm.inputs["userData"])
    config = json.loads(vm.plain["userData"].removeprefix("#cloud-config\n"))
    assert config["ssh_keys"]["ed25519_private"] == HOST_KEY.private_openssh
    assert config["runcmd"] == [["shutdown", "-h", "+780"]]


def test_login_key_group_and_profile_are_the_stack_own(on_demand):
    vm = on_demand.one(INSTANCE).plain
    assert on_demand.one("aws:ec2/keyPair:KeyPair").plain["publicKey"] == CLIENT_KEY
    assert vm["keyName"] == "trainrig-yolo-coco-a1b2c3d"
    assert vm["vpcSecurityGroupIds"] == [on_demand.one("aws:ec2/securityGroup:SecurityGroup").id]
    assert vm["iamInstanceProfile"] == "trainrig-yolo-coco-a1b2c3d"
    assert vm["tags"]["Name"] == "trainrig-yolo-coco"


def test_security_group_lets_ssh_in_from_the_user_only(on_demand):
    group = on_demand.one("aws:ec2/securityGroup:SecurityGroup").plain
    assert [(r["protocol"], r["fromPort"], r["toPort"], r["cidrBlocks"]) for r in group["ingress"]] == [
        ("tcp", 22, 22, ["198.51.100.7/32"]),
    ]


def test_role_reads_the_dataset_prefix_and_writes_the_output_bucket(on_demand):
    assert policy_of(on_demand) == [
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": "arn:aws:s3:::team-datasets",
            "Condition": {"StringLike": {"s3:prefix": ["coco/*"]}},
        },
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::team-datasets/coco/*"},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{OUTPUT_BUCKET}"},
        {
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": f"arn:aws:s3:::{OUTPUT_BUCKET}/*",
        },
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucketMultipartUploads"],
            "Resource": f"arn:aws:s3:::{OUTPUT_BUCKET}",
        },
    ]


def test_user_output_bucket_means_no_stack_bucket_and_rights_on_its_prefix_only():
    stack = ec2(output_store_bucket="my-outputs", output_store_prefix="runs/yolo/", dataset_bucket=None)
    assert [d for d in stack.declared if d.type.startswith("aws:s3/")] == []
    statements = policy_of(stack)
    assert {s["Resource"] for s in statements} == {
        "arn:aws:s3:::my-outputs",
        "arn:aws:s3:::my-outputs/runs/yolo/*",
    }
    assert statements[0]["Condition"] == {"StringLike": {"s3:prefix": ["runs/yolo/*"]}}
    assert stack.outputs["output_bucket"] == "my-outputs"


def test_outputs_tell_how_to_reach_the_machine(on_demand):
    assert on_demand.outputs == {
        "address": AWS_IP,
        "ssh_user": "ubuntu",
        "host_key": HOST_KEY.public_openssh,
        "output_bucket": OUTPUT_BUCKET,
        "hourly_price": 0.526,
    }


def test_the_role_reaches_this_run_prefix_only_never_a_sibling_run():
    import json

    from infra.components.aws_gpu_machine import bucket_policy

    inputs = make_inputs(AWS_T4, dataset_prefix="datasets/coco", output_store_prefix="runs/yolo-coco")
    statements = json.loads(bucket_policy(inputs, "team-outputs"))["Statement"]
    resources = [s["Resource"] for s in statements]
    assert "arn:aws:s3:::team-outputs/runs/yolo-coco/*" in resources
    assert "arn:aws:s3:::team-datasets/datasets/coco/*" in resources
    prefixes = [p for s in statements for p in s.get("Condition", {}).get("StringLike", {}).get("s3:prefix", [])]
    assert sorted(prefixes) == ["datasets/coco/*", "runs/yolo-coco/*"]  # not "runs/yolo-coco*" (yolo-coco2's too)


def test_the_instance_lives_in_the_run_own_vpc_with_a_route_out_and_asks_for_a_public_address(on_demand):
    vpc, subnet = on_demand.one("aws:ec2/vpc:Vpc"), on_demand.one(SUBNET)
    gateway, routes = on_demand.one("aws:ec2/internetGateway:InternetGateway"), on_demand.one("aws:ec2/routeTable:RouteTable")
    association = on_demand.one("aws:ec2/routeTableAssociation:RouteTableAssociation").plain
    vm = on_demand.one(INSTANCE).plain
    assert vm["subnetId"] == subnet.id and vm["associatePublicIpAddress"] is True
    assert subnet.plain["vpcId"] == vpc.id and subnet.plain["mapPublicIpOnLaunch"] is False
    assert on_demand.one("aws:ec2/securityGroup:SecurityGroup").plain["vpcId"] == vpc.id
    assert gateway.plain["vpcId"] == vpc.id and routes.plain["vpcId"] == vpc.id
    assert routes.plain["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": gateway.id}]
    assert (association["subnetId"], association["routeTableId"]) == (subnet.id, routes.id)


def test_without_a_zone_the_subnet_goes_to_the_first_zone_that_sells_the_type():
    stack = deploy(lambda: AwsGpuMachine("yolo-coco", make_inputs(replace(AWS_T4, zone=None))))
    [offerings] = [c for c in stack.calls if c.token.endswith("getInstanceTypeOfferings")]
    assert offerings.args["filters"] == [{"name": "instance-type", "values": ["g4dn.xlarge"]}]
    assert offerings.args["locationType"] == "availability-zone" and offerings.args["region"] == "us-east-1"
    assert stack.one(SUBNET).plain["availabilityZone"] == "us-east-1a"


def test_a_region_where_no_zone_sells_the_type_is_one_sentence():
    with pytest.raises(BadInput, match=r"^no availability zone of us-east-1 offers g4dn.xlarge"):
        deploy(lambda: AwsGpuMachine("yolo-coco", make_inputs(replace(AWS_T4, zone=None))), offered_zones=[])


def test_a_disk_smaller_than_the_ami_snapshot_is_refused_before_any_instance():
    with pytest.raises(BadInput, match=rf"at least {AMI_SNAPSHOT_GB} GB, not 60"):
        ec2(disk_gb=60)
    assert ec2(disk_gb=AMI_SNAPSHOT_GB).one(INSTANCE).plain["rootBlockDevice"]["volumeSize"] == AMI_SNAPSHOT_GB


def test_cloud_config_installs_python3_venv_before_the_ssh_keys(on_demand):
    config = json.loads(on_demand.one(INSTANCE).plain["userData"].removeprefix("#cloud-config\n"))
    [[shell, flag, script]] = config["bootcmd"]  # bootcmd runs before cloud-init's ssh module
    assert (shell, flag) == ("sh", "-c") and "install -y python3-venv" in script
