"""A TPU VM (Cloud TPU v2 API) for one run: the host runs the training itself, like a GPU VM. A pod slice
(v4-16, v5litepod-16, ...) is still one TPU VM resource, with several hosts (workers): each runs the
training, and they reach each other through the peer rule (gcp_access.py)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.components.gcp_access import CLOUD_PLATFORM_SCOPE, GcpAccess, base_name, gcp_metadata
from infra.errors import BadInput
from infra.components.machine import MachineComponent
from infra.stack_inputs import StackInputs


class GcpTpuMachine(MachineComponent):

    def __init__(self, name: str, inputs: StackInputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainrig:gcp:TpuMachine", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        offer = inputs.offer
        if not offer.tpu_runtime:
            raise BadInput(
                f"the TPU offer {offer.accelerator!r} names no TPU runtime version; fix the catalog entry."
            )
        if inputs.nodes > 1:
            raise BadInput(f"{offer.accelerator} is a TPU slice, whose hosts are its nodes: leave out --nodes and "
                           "choose a bigger slice (`trainrig accelerators` lists them with their hosts).")
        access = GcpAccess(f"{base_name(inputs)}-access", inputs, opts=child)

        # A TPU VM's boot disk and image come with its runtime version: disk_gb and image do not apply.
        vm = gcp.tpu.V2Vm(
            base_name(inputs),
            zone=offer.zone,
            project=inputs.project,
            accelerator_type=offer.machine_type,
            runtime_version=offer.tpu_runtime,
            # The run's own network (see gcp_network.py): the project's default one lets SSH in from anywhere.
            network_config=gcp.tpu.V2VmNetworkConfigArgs(network=access.network, subnetwork=access.subnetwork,
                                                         enable_external_ips=True),
            scheduling_config=gcp.tpu.V2VmSchedulingConfigArgs(spot=True) if inputs.spot else None,
            service_account=gcp.tpu.V2VmServiceAccountArgs(
                email=access.service_account_email,
                scopes=[CLOUD_PLATFORM_SCOPE],
            ),
            metadata=gcp_metadata(inputs),
            tags=[access.network_tag],
            labels=inputs.labels,
            # The runner reads the dataset as soon as it logs in: the bucket rights must be there.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access]),
        )

        # One endpoint per worker (host), taken to be in worker-id order (the order `gcloud ... tpu-vm ssh
        # --worker=N` and SkyPilot index them by; not checked against a real slice): endpoint N is rank N.
        # JAX finds its own process ids on a slice, so it does not depend on this. Worker 0 is the host
        # trainrig follows; a single-host slice has only that one.
        pairs = vm.network_endpoints.apply(
            lambda ends: [(end.access_configs[0].external_ip, end.ip_address) for end in ends])
        self._set_nodes(inputs, pairs, offer.hosts)
        address = pairs.apply(lambda found: found[0][0])
        self._publish(address, inputs.ssh_user, inputs, access.output_bucket)
