"""AWS leftovers: EC2 instances, unattached volumes, security groups, key pairs and a run's own VPC,
subnet, route table and internet gateway per region (found by a tag filter on the cloud's side), IAM roles and instance profiles and S3 buckets (global; their
listings carry no tags, so only names that start like a run's stack names them are asked for theirs).
boto3 finds the usual credentials and honours AWS_ENDPOINT_URL (the tests' moto server)."""

from __future__ import annotations

import shlex

from runner.leftovers import MANAGED_BY, MANAGED_KEY, RUN_KEY, Leftover, LeftoverError, Listing, hourly_price, utc

PREFIX = "trainrig-"  # every resource of a run's stack is named trainrig-<run id>-... (infra/components)
GROUP_RELEASE_S = 120.0
_LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


def _client(service: str, region: str | None = None):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.session.Session().client(service, region_name=region or "us-east-1")


def _tags(items: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _ours(tags: dict[str, str], run_id: str | None) -> bool:
    return tags.get(MANAGED_KEY) == MANAGED_BY and RUN_KEY in tags and (run_id is None or tags[RUN_KEY] == run_id)


def _filters(run_id: str | None, *more: dict) -> list[dict]:
    found = [{"Name": f"tag:{MANAGED_KEY}", "Values": [MANAGED_BY]}]
    found.append({"Name": f"tag:{RUN_KEY}", "Values": [run_id]} if run_id else {"Name": "tag-key", "Values": [RUN_KEY]})
    return found + list(more)


def _cmd(*words: str) -> str:
    return shlex.join(words)


def _regional(region: str, run_id: str | None) -> list[Leftover]:
    ec2 = _client("ec2", region)
    out = []
    for page in ec2.get_paginator("describe_instances").paginate(
            Filters=_filters(run_id, {"Name": "instance-state-name", "Values": _LIVE_STATES})):
        for r in page["Reservations"]:
            for i in r["Instances"]:
                tags, state = _tags(i.get("Tags")), i["State"]["Name"]
                running = state in ("pending", "running")  # a stopped instance bills its disk only
                price = hourly_price("aws", i["InstanceType"], spot=i.get("InstanceLifecycle") == "spot") if running else None
                out.append(Leftover("aws", "instance", i["InstanceId"], region, tags[RUN_KEY], utc(i.get("LaunchTime")),
                                    price, _cmd("aws", "ec2", "terminate-instances", "--region", region, "--instance-ids",
                                                i["InstanceId"]), state=state))
    for page in ec2.get_paginator("describe_volumes").paginate(
            Filters=_filters(run_id, {"Name": "status", "Values": ["available"]})):
        for v in page["Volumes"]:  # attached ones go with their instance (delete on termination)
            out.append(Leftover("aws", "volume", v["VolumeId"], region, _tags(v.get("Tags"))[RUN_KEY], utc(v.get("CreateTime")),
                                None, _cmd("aws", "ec2", "delete-volume", "--region", region, "--volume-id", v["VolumeId"])))
    for page in ec2.get_paginator("describe_security_groups").paginate(Filters=_filters(run_id)):
        for g in page["SecurityGroups"]:
            out.append(Leftover("aws", "security-group", g["GroupId"], region, _tags(g.get("Tags"))[RUN_KEY], None, None,
                                _cmd("aws", "ec2", "delete-security-group", "--region", region, "--group-id", g["GroupId"])))
    for k in ec2.describe_key_pairs(Filters=_filters(run_id))["KeyPairs"]:
        # By name (unique in its region): moto's server ignores a KeyPairId on delete.
        out.append(Leftover("aws", "key-pair", k["KeyName"], region, _tags(k.get("Tags"))[RUN_KEY], utc(k.get("CreateTime")),
                            None, _cmd("aws", "ec2", "delete-key-pair", "--region", region, "--key-name", k["KeyName"])))
    return out + _network(ec2, region, run_id)


def _network(ec2, region: str, run_id: str | None) -> list[Leftover]:  # type: ignore[no-untyped-def]
    """A run's own VPC with its subnet, route table and internet gateway (infra/components/aws_network.py):
    free, but five VPCs per region is the default quota, so a few leftovers stop the next run."""
    out = []
    for s in ec2.describe_subnets(Filters=_filters(run_id))["Subnets"]:
        out.append(Leftover("aws", "subnet", s["SubnetId"], region, _tags(s.get("Tags"))[RUN_KEY], None, None,
                            _cmd("aws", "ec2", "delete-subnet", "--region", region, "--subnet-id", s["SubnetId"])))
    for t in ec2.describe_route_tables(Filters=_filters(run_id))["RouteTables"]:
        steps = [_cmd("aws", "ec2", "disassociate-route-table", "--region", region, "--association-id", a["RouteTableAssociationId"])
                 for a in t.get("Associations", []) if not a.get("Main") and a.get("SubnetId")]
        out.append(Leftover("aws", "route-table", t["RouteTableId"], region, _tags(t.get("Tags"))[RUN_KEY], None, None,
                            " && ".join(steps + [_cmd("aws", "ec2", "delete-route-table", "--region", region,
                                                      "--route-table-id", t["RouteTableId"])])))
    for g in ec2.describe_internet_gateways(Filters=_filters(run_id))["InternetGateways"]:
        gid = g["InternetGatewayId"]
        steps = [_cmd("aws", "ec2", "detach-internet-gateway", "--region", region, "--internet-gateway-id", gid,
                      "--vpc-id", a["VpcId"]) for a in g.get("Attachments", [])]
        out.append(Leftover("aws", "internet-gateway", gid, region, _tags(g.get("Tags"))[RUN_KEY], None, None,
                            " && ".join(steps + [_cmd("aws", "ec2", "delete-internet-gateway", "--region", region,
                                                      "--internet-gateway-id", gid)])))
    for v in ec2.describe_vpcs(Filters=_filters(run_id))["Vpcs"]:
        out.append(Leftover("aws", "vpc", v["VpcId"], region, _tags(v.get("Tags"))[RUN_KEY], None, None,
                            _cmd("aws", "ec2", "delete-vpc", "--region", region, "--vpc-id", v["VpcId"])))
    return out


def _iam(run_id: str | None) -> list[Leftover]:
    iam = _client("iam")
    out = []
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for p in page["InstanceProfiles"]:
            if not p["InstanceProfileName"].startswith(PREFIX):
                continue
            name = p["InstanceProfileName"]
            full = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            tags = _tags(full.get("Tags"))
            if _ours(tags, run_id):
                steps = [_cmd("aws", "iam", "remove-role-from-instance-profile", "--instance-profile-name", name, "--role-name", r["RoleName"])
                         for r in full.get("Roles", [])]
                out.append(Leftover("aws", "instance-profile", name, "global", tags[RUN_KEY], utc(p.get("CreateDate")), None,
                                    " && ".join(steps + [_cmd("aws", "iam", "delete-instance-profile", "--instance-profile-name", name)])))
    for page in iam.get_paginator("list_roles").paginate():
        for r in page["Roles"]:
            if not r["RoleName"].startswith(PREFIX):
                continue
            name = r["RoleName"]
            tags = _tags(iam.get_role(RoleName=name)["Role"].get("Tags"))
            if _ours(tags, run_id):
                policies = iam.list_role_policies(RoleName=name)["PolicyNames"]
                steps = [_cmd("aws", "iam", "delete-role-policy", "--role-name", name, "--policy-name", p) for p in policies]
                out.append(Leftover("aws", "role", name, "global", tags[RUN_KEY], utc(r.get("CreateDate")), None,
                                    " && ".join(steps + [_cmd("aws", "iam", "delete-role", "--role-name", name)])))
    return out


def _buckets(run_id: str | None) -> list[Leftover]:
    from botocore.exceptions import ClientError

    s3 = _client("s3")
    out = []
    for b in s3.list_buckets().get("Buckets", []):
        if not b["Name"].startswith(PREFIX):
            continue
        try:
            tags = _tags(s3.get_bucket_tagging(Bucket=b["Name"]).get("TagSet"))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchTagSet", "NoSuchBucket"):
                continue  # untagged: not a run's; or deleted meanwhile
            raise
        if _ours(tags, run_id):
            region = s3.get_bucket_location(Bucket=b["Name"]).get("LocationConstraint") or "us-east-1"
            out.append(Leftover("aws", "bucket", b["Name"], region, tags[RUN_KEY], utc(b.get("CreationDate")), None,
                                _cmd("aws", "s3", "rb", f"s3://{b['Name']}", "--force")))
    return out


def list_leftovers(regions: tuple[str, ...], run_id: str | None) -> Listing:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError  # not a BotoCoreError: an endpoint that is no AWS

    from concurrent.futures import ThreadPoolExecutor

    found: list[Leftover] = []
    errors: list[str] = []
    parts = [(f"aws {r}", lambda r=r: _regional(r, run_id)) for r in regions]
    parts += [("aws iam", lambda: _iam(run_id)), ("aws s3", lambda: _buckets(run_id))]
    # Sixteen regions one after the other take seconds of round trips: ask them side by side.
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(what, pool.submit(call)) for what, call in parts]
        for what, future in futures:
            try:
                found += future.result()
            except (BotoCoreError, ClientError, ResponseParserError) as e:
                errors.append(f"{what}: {e}")
    return Listing(leftovers=tuple(found), errors=tuple(errors))


def delete(f: Leftover) -> None:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        _delete(f)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code.endswith(("NotFound", ".NotFound", "NoSuchEntity", "NoSuchBucket")):
            return  # gone already: what we wanted
        raise LeftoverError(f"aws {f.kind} {f.id}: {e}") from e
    except (BotoCoreError, ResponseParserError) as e:
        raise LeftoverError(f"aws {f.kind} {f.id}: {e}") from e


def _delete(f: Leftover) -> None:
    if f.kind in ("subnet", "route-table", "internet-gateway", "vpc"):
        _delete_network(_client("ec2", f.where), f)
    elif f.kind in ("instance", "volume", "security-group", "key-pair"):
        ec2 = _client("ec2", f.where)
        if f.kind == "instance":
            ec2.terminate_instances(InstanceIds=[f.id])
            # Its security group and key pair can go only once it is gone.
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[f.id], WaiterConfig={"Delay": 5, "MaxAttempts": 60})
        elif f.kind == "volume":
            ec2.delete_volume(VolumeId=f.id)
        elif f.kind == "security-group":
            _delete_group(ec2, f.id)
        else:
            ec2.delete_key_pair(KeyName=f.id)
    elif f.kind == "instance-profile":
        iam = _client("iam")
        for role in iam.get_instance_profile(InstanceProfileName=f.id)["InstanceProfile"].get("Roles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=f.id, RoleName=role["RoleName"])
        iam.delete_instance_profile(InstanceProfileName=f.id)
    elif f.kind == "role":
        iam = _client("iam")
        for name in iam.list_role_policies(RoleName=f.id)["PolicyNames"]:
            iam.delete_role_policy(RoleName=f.id, PolicyName=name)
        for p in iam.list_attached_role_policies(RoleName=f.id)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=f.id, PolicyArn=p["PolicyArn"])
        for p in iam.list_instance_profiles_for_role(RoleName=f.id)["InstanceProfiles"]:
            iam.remove_role_from_instance_profile(InstanceProfileName=p["InstanceProfileName"], RoleName=f.id)
        iam.delete_role(RoleName=f.id)
    elif f.kind == "bucket":
        _empty_and_delete_bucket(f.id)
    else:
        raise AssertionError(f.kind)


def _delete_network(ec2, f: Leftover) -> None:  # type: ignore[no-untyped-def]
    if f.kind == "subnet":
        ec2.delete_subnet(SubnetId=f.id)
    elif f.kind == "route-table":
        for t in ec2.describe_route_tables(RouteTableIds=[f.id])["RouteTables"]:
            for a in t.get("Associations", []):
                if not a.get("Main") and a.get("SubnetId"):
                    ec2.disassociate_route_table(AssociationId=a["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=f.id)
    elif f.kind == "internet-gateway":
        for g in ec2.describe_internet_gateways(InternetGatewayIds=[f.id])["InternetGateways"]:
            for a in g.get("Attachments", []):
                ec2.detach_internet_gateway(InternetGatewayId=f.id, VpcId=a["VpcId"])
        ec2.delete_internet_gateway(InternetGatewayId=f.id)
    else:
        ec2.delete_vpc(VpcId=f.id)


def _delete_group(ec2, group_id: str) -> None:  # type: ignore[no-untyped-def]
    """A terminated instance's network interface lets go of its group a little later (AWS answers
    DependencyViolation meanwhile): wait for that, within a bound."""
    import time

    from botocore.exceptions import ClientError

    end = time.monotonic() + GROUP_RELEASE_S
    while True:
        try:
            ec2.delete_security_group(GroupId=group_id)
            return
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "DependencyViolation" or time.monotonic() > end:
                raise
        time.sleep(5)


def _empty_and_delete_bucket(name: str) -> None:
    s3 = _client("s3")
    # Every version and delete marker too, or the bucket is not empty on a versioned one.
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=name)
