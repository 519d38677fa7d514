"""A GPU VM on Compute Engine for one run, from a Deep Learning VM image."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.components.gcp_access import CLOUD_PLATFORM_SCOPE, GcpAccess, base_name, gcp_metadata
from infra.components.machine import MachineComponent
from infra.stack_inputs import StackInputs

DLVM_IMAGE_PROJECT = "deeplearning-platform-release"


def image_path(inputs: StackInputs) -> str:
    family = inputs.image or inputs.offer.image
    return f"projects/{DLVM_IMAGE_PROJECT}/global/images/family/{family}"


# Machine series whose VMs must use gVNIC (Google Virtual NIC): A3 (H100) and newer GPU series take
# no VirtIO-Net NIC. https://cloud.google.com/compute/docs/networking/using-gvnic and
# https://cloud.google.com/compute/docs/accelerator-optimized-machines#a3-vms (Deep Learning VM
# images carry the GVNIC guest OS feature). Older series (n1, g2, a2) keep the default VirtIO NIC.
GVNIC_SERIES = ("a3", "a4")


def nic_type(machine_type: str) -> str | None:
    return "GVNIC" if machine_type.split("-", 1)[0] in GVNIC_SERIES else None


def node_name(inputs: StackInputs, rank: int) -> str:
    """One machine keeps the run's name (an existing stack's instance is not replaced); several carry their
    rank: at most "trainrig-" + 40 + "-n63" + Pulumi's 8-character suffix = 61 of GCE's 63."""
    return base_name(inputs) if inputs.nodes == 1 else f"{base_name(inputs)}-n{rank}"


# The cloud-side limit counts from provisioning and cannot be re-armed by the machine, so it leaves
# room for a `trainrig start` some hours after `up` (the in-machine failsafe is re-armed at start).
CLOUD_LIMIT_EXTRA_MIN = 5 * 60


def _scheduling(spot: bool, failsafe_minutes: int) -> gcp.compute.InstanceSchedulingArgs:
    # GPU VMs cannot live-migrate, so they must stop for host maintenance; they are not restarted
    # after it (spot requires that; on demand, a restarted machine would bill with nothing running).
    # The run-time limit is the cloud's own failsafe: the VM stops even if its boot script never ran.
    # STOP keeps the disk: the outputs synced so far survive.
    limit = gcp.compute.InstanceSchedulingMaxRunDurationArgs(seconds=(failsafe_minutes + CLOUD_LIMIT_EXTRA_MIN) * 60)
    if spot:
        return gcp.compute.InstanceSchedulingArgs(
            on_host_maintenance="TERMINATE",
            automatic_restart=False,
            provisioning_model="SPOT",
            preemptible=True,
            instance_termination_action="STOP",
            max_run_duration=limit,
        )
    return gcp.compute.InstanceSchedulingArgs(
        on_host_maintenance="TERMINATE", automatic_restart=False, instance_termination_action="STOP",
        max_run_duration=limit,
    )


class GcpGpuMachine(MachineComponent):

    def __init__(self, name: str, inputs: StackInputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainrig:gcp:GpuMachine", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        offer = inputs.offer
        access = GcpAccess(f"{base_name(inputs)}-access", inputs, opts=child)

        # n1 machines take their GPUs as guest accelerators; g2/a2/a3 types come with theirs.
        accelerators = (
            [gcp.compute.InstanceGuestAcceleratorArgs(type=offer.gcp_accelerator_type, count=offer.count)]
            if offer.gcp_accelerator_type
            else None
        )
        metadata = gcp_metadata(inputs)
        metadata["install-nvidia-driver"] = "True"  # the DLVM installs its driver at first boot

        instances = [self._instance(node_name(inputs, rank), inputs, access, accelerators, metadata)
                     for rank in range(inputs.nodes)]
        # Each machine's (public, private) address: rank 0's public one is `address`, as for one machine.
        pairs = pulumi.Output.all(*[vm.network_interfaces.apply(
            lambda nics: (nics[0].access_configs[0].nat_ip, nics[0].network_ip)) for vm in instances])
        self._set_nodes(inputs, pairs, inputs.nodes)
        address = pairs.apply(lambda found: found[0][0])
        self._publish(address, inputs.ssh_user, inputs, access.output_bucket)

    def _instance(self, name: str, inputs: StackInputs, access: GcpAccess, accelerators: list | None,
                  metadata: dict) -> gcp.compute.Instance:
        offer = inputs.offer
        return gcp.compute.Instance(
            name,
            zone=offer.zone,
            project=inputs.project,
            machine_type=offer.machine_type,
            guest_accelerators=accelerators,
            scheduling=_scheduling(inputs.spot, inputs.failsafe_minutes),
            boot_disk=gcp.compute.InstanceBootDiskArgs(
                auto_delete=True,
                initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(
                    image=image_path(inputs),
                    size=inputs.disk_gb,
                    type="pd-balanced",
                    labels=inputs.labels,
                ),
            ),
            network_interfaces=[
                gcp.compute.InstanceNetworkInterfaceArgs(
                    network=access.network,  # the run's own network: only the SSH rule (and the peer rule) let in
                    subnetwork=access.subnetwork,
                    nic_type=nic_type(offer.machine_type),
                    access_configs=[gcp.compute.InstanceNetworkInterfaceAccessConfigArgs()],  # ephemeral IP
                )
            ],
            tags=[access.network_tag],
            metadata=metadata,
            service_account=gcp.compute.InstanceServiceAccountArgs(
                email=access.service_account_email,
                scopes=[CLOUD_PLATFORM_SCOPE],
            ),
            labels=inputs.labels,
            # The runner reads the dataset as soon as it logs in: the bucket rights must be there.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access]),
        )

