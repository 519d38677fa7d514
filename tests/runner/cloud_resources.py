"""A run's cloud resources made directly with the cloud's SDK, named and tagged as the run's Pulumi
stack names and tags them (infra/components, infra/stack_inputs.py), but with no stack: what an
interrupted `pulumi up` leaves behind. Made against moto's server or the GCS emulator
(tests/buckets.py), whichever the environment points the SDKs at."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from typing import Iterator

from infra.stack_inputs import MANAGED_BY
from tests.buckets import free_port

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsZ2Y0Qm8HhJ8t9T8pPZrT0t9G4z0X9oZbF1D4o3W4b trainrig"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}]}


def labels(run_id: str) -> dict[str, str]:
    code, _, dataset = run_id.partition("-")
    return {"trainrig-run": run_id, "trainrig-code": code, "trainrig-dataset": dataset, "managed-by": MANAGED_BY}


def _suffix() -> str:
    return uuid.uuid4().hex[:7]  # Pulumi's auto-name suffix


def aws_run(run_id: str, region: str = "us-east-1", instance_type: str = "g4dn.xlarge") -> dict[str, str]:
    """The run's own network, an instance in it, its security group, key pair, role (with its inline
    policy) in an instance profile, and a bucket, all tagged as run `run_id`'s; returns {kind: id}."""
    import boto3

    tags = [{"Key": k, "Value": v} for k, v in labels(run_id).items()]
    base = f"trainrig-{run_id}"
    ec2 = boto3.client("ec2", region_name=region)
    net = _aws_network(ec2, tags, base)
    key = ec2.import_key_pair(KeyName=f"{base}-{_suffix()}", PublicKeyMaterial=PUBLIC_KEY.encode(),
                              TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
    group = ec2.create_security_group(GroupName=f"{base}-{_suffix()}", Description=f"trainrig run {run_id}: SSH only",
                                      VpcId=net["vpc"], TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type,
                                 KeyName=key["KeyName"], SubnetId=net["subnet"], SecurityGroupIds=[group["GroupId"]],
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": tags + [{"Key": "Name", "Value": base}]}])
    iam = boto3.client("iam")
    role = f"{base}-role-{_suffix()}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}), Tags=tags)
    iam.put_role_policy(RoleName=role, PolicyName=f"{base}-buckets-{_suffix()}", PolicyDocument=json.dumps(POLICY))
    profile = f"{base}-{_suffix()}"
    iam.create_instance_profile(InstanceProfileName=profile, Tags=tags)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = f"{base}-{_suffix()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    s3.put_object(Bucket=bucket, Key=f"{run_id}/outputs/model.pt", Body=b"weights")
    return {"instance": instance["Instances"][0]["InstanceId"], "security-group": group["GroupId"],
            "key-pair": key["KeyName"], "role": role, "instance-profile": profile, "bucket": bucket, **net}


def _aws_network(ec2, tags: list[dict], base: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The run's own VPC as infra/components/aws_network.py makes it: a subnet, an internet gateway
    attached, a route table associated with the subnet."""
    def spec(kind: str, *extra: dict) -> list[dict]:
        return [{"ResourceType": kind, "Tags": tags + list(extra)}]

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=spec("vpc", {"Key": "Name", "Value": base}))["Vpc"]["VpcId"]
    gateway = ec2.create_internet_gateway(TagSpecifications=spec("internet-gateway"))["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", TagSpecifications=spec("subnet"))["Subnet"]["SubnetId"]
    routes = ec2.create_route_table(VpcId=vpc, TagSpecifications=spec("route-table"))["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=routes, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    ec2.associate_route_table(RouteTableId=routes, SubnetId=subnet)
    return {"vpc": vpc, "subnet": subnet, "internet-gateway": gateway, "route-table": routes}


def aws_existing() -> dict[str, set[str]]:
    """What exists now (in us-east-1 and the global services), by kind, whoever made it."""
    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1")
    iam = boto3.client("iam")
    running = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] not in ("terminated", "shutting-down")]
    return {
        "instance": set(running),
        "security-group": {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]},
        "key-pair": {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]},
        "role": {r["RoleName"] for r in iam.list_roles()["Roles"]},
        "instance-profile": {p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]},
        "bucket": {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]},
        "vpc": {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]},
        "subnet": {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]},
        "internet-gateway": {g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]},
        "route-table": {t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"]},
    }


def gcs_run_bucket(run_id: str, project: str) -> str:
    """The run's output bucket with the run's labels, in the GCS emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=project, credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"trainrig-{run_id}-{_suffix()}")
    bucket.labels = labels(run_id)
    bucket.patch()  # the emulator drops labels given at creation (GCS itself keeps them); it keeps patched ones
    client.bucket(bucket.name).blob(f"{run_id}/outputs/model.pt").upload_from_string(b"weights")
    return bucket.name


@contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    """moto's server (EC2, IAM, S3, ...) in its own process on a free loopback port, so its state is
    its own (moto's in-process backends are shared by every server in one process); yields the
    environment that points boto3 at it. `reset` empties it between tests."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's server did not start on port {port}") from None
                time.sleep(0.05)
        yield {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def reset(env: dict[str, str]) -> None:
    """Forget every resource the server holds (moto's own reset endpoint)."""
    urllib.request.urlopen(urllib.request.Request(env["AWS_ENDPOINT_URL"] + "/moto-api/reset", method="POST"), timeout=10).close()
