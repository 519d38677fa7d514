"""The run's own VPC network on GCP: one subnet in the machine's region, and nothing else.

Why not the project's `default` network: its `default-allow-ssh` rule admits tcp:22 from 0.0.0.0/0 to
every instance, so the run's /32 rule would restrict nothing there. A new VPC network has only the
implied rules (deny all ingress, allow all egress), so the run's firewall rule is the only way in.
https://cloud.google.com/vpc/docs/firewalls#more_rules_default_vpc (the default network's rules),
https://cloud.google.com/vpc/docs/firewalls#default_firewall_rules (the implied rules of every network).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.stack_inputs import StackInputs

# Any RFC 1918 range: the network is the run's alone, so nothing can overlap it.
SUBNET_RANGE = "10.64.0.0/24"


@dataclass(frozen=True)
class RunNetwork:
    network: gcp.compute.Network
    subnetwork: gcp.compute.Subnetwork


def run_network(base: str, inputs: StackInputs, child: pulumi.ResourceOptions) -> RunNetwork:
    """A custom-mode network (no automatic subnets in every region) and the run's one subnet."""
    network = gcp.compute.Network(
        f"{base}-net",
        project=inputs.project,
        auto_create_subnetworks=False,
        description=f"trainrig run {inputs.run_id}: the machine's own network, SSH from the user address only",
        opts=child,
    )
    subnetwork = gcp.compute.Subnetwork(
        f"{base}-sub",
        project=inputs.project,
        region=inputs.offer.region,
        network=network.id,
        ip_cidr_range=SUBNET_RANGE,
        description=f"trainrig run {inputs.run_id}",
        opts=child,
    )
    return RunNetwork(network=network, subnetwork=subnetwork)
