"""The run's own network on AWS: a VPC, one public subnet in an availability zone that offers the
instance type, an internet gateway and the route to it.

Why not the account's default VPC: accounts and organisations without one exist (it can be deleted,
and some organisations never create it), and RunInstances without a subnet then fails. The run's own
VPC depends on nothing in the account, and is destroyed with the stack.
https://docs.aws.amazon.com/vpc/latest/userguide/default-vpc.html (a deleted default VPC),
https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Internet_Gateway.html (what a public subnet needs).
Its cost: a VPC and an internet gateway count against the region's quota (5 of each by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.errors import BadInput
from infra.stack_inputs import StackInputs

VPC_RANGE = "10.64.0.0/16"  # RFC 1918; the VPC is the run's alone, so nothing can overlap it
SUBNET_RANGE = "10.64.0.0/24"


@dataclass(frozen=True)
class RunNetwork:
    vpc: aws.ec2.Vpc
    subnet: aws.ec2.Subnet
    route: aws.ec2.RouteTableAssociation  # the machine needs it at boot (packages, buckets)


def pick_zone(instance_type: str, region: str, offered: list[str]) -> str:
    """The availability zone for the subnet: the first, by name, that offers the instance type."""
    if not offered:
        raise BadInput(f"no availability zone of {region} offers {instance_type} to this account: "
                       "choose another --region (`trainrig accelerators` lists where it runs).")
    return sorted(offered)[0]


def _zone(inputs: StackInputs, parent: pulumi.Resource) -> pulumi.Input[str]:
    offer = inputs.offer
    if offer.zone:
        return offer.zone
    # The subnet fixes the instance's zone: ask EC2 which zones sell the type, rather than let the
    # subnet land in one that does not (us-east-1e has no g5, for one).
    found = aws.ec2.get_instance_type_offerings_output(
        filters=[aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="instance-type", values=[offer.machine_type])],
        location_type="availability-zone",
        region=offer.region,
        opts=pulumi.InvokeOutputOptions(parent=parent),
    )
    return found.locations.apply(lambda zones: pick_zone(offer.machine_type, offer.region, list(zones or [])))


def run_network(base: str, inputs: StackInputs, parent: pulumi.Resource) -> RunNetwork:
    child = pulumi.ResourceOptions(parent=parent)
    region, tags = inputs.offer.region, inputs.labels
    vpc = aws.ec2.Vpc(f"{base}-vpc", cidr_block=VPC_RANGE, enable_dns_support=True, enable_dns_hostnames=True,
                      region=region, tags={**tags, "Name": base}, opts=child)
    gateway = aws.ec2.InternetGateway(f"{base}-igw", vpc_id=vpc.id, region=region, tags=tags, opts=child)
    subnet = aws.ec2.Subnet(
        f"{base}-subnet",
        vpc_id=vpc.id,
        cidr_block=SUBNET_RANGE,
        availability_zone=_zone(inputs, parent),
        map_public_ip_on_launch=False,  # the instance asks for its public address itself
        region=region,
        tags=tags,
        opts=child,
    )
    routes = aws.ec2.RouteTable(
        f"{base}-routes",
        vpc_id=vpc.id,
        # Outbound through the gateway (pip, buckets); what may come in is the security group's call.
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
        region=region,
        tags=tags,
        opts=child,
    )
    route = aws.ec2.RouteTableAssociation(f"{base}-routes-subnet", subnet_id=subnet.id, route_table_id=routes.id,
                                          region=region, opts=child)
    return RunNetwork(vpc=vpc, subnet=subnet, route=route)
