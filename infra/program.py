"""The Pulumi program of one run: the machine component its offer calls for, and the stack outputs
the runner reads back (their names are a contract with infra's Automation API wrapper)."""

from __future__ import annotations

import pulumi

from infra.components.machine import MachineComponent
from infra.errors import BadInput
from infra.stack_inputs import StackInputs

# Stack output name -> the attribute every machine component has under that meaning.
STACK_OUTPUTS = {
    "address": "address",
    "sshUser": "ssh_user",
    "hostKey": "host_key",
    "outputBucket": "output_bucket",
    "hourlyPrice": "hourly_price",
}


# Several machines (`--nodes N`, a TPU pod slice's workers): a list, in rank order, of
# {"address": public, "privateAddress": on the run's network, "hostKey": pinned} (infra/engine_outputs.py).
NODES_OUTPUT = "nodes"


def _component(inputs: StackInputs) -> MachineComponent:
    # Each cloud's SDK is imported only when its stack is built: a GCP run never loads pulumi_aws.
    offer = inputs.offer
    if offer.cloud == "gcp" and offer.kind == "gpu":
        from infra.components.gcp_gpu_machine import GcpGpuMachine

        return GcpGpuMachine(inputs.run_id, inputs)
    if offer.cloud == "gcp" and offer.kind == "tpu":
        from infra.components.gcp_tpu_machine import GcpTpuMachine

        return GcpTpuMachine(inputs.run_id, inputs)
    if offer.cloud == "aws" and offer.kind == "gpu":
        from infra.components.aws_gpu_machine import AwsGpuMachine

        return AwsGpuMachine(inputs.run_id, inputs)
    raise BadInput(f"trainrig has no {offer.kind} machine on {offer.cloud} (asked for {offer.accelerator}).")


def build(inputs: StackInputs) -> MachineComponent:
    """Declare the run's machine and export what the runner needs to reach it."""
    machine = _component(inputs)
    for output_name, attribute in STACK_OUTPUTS.items():
        pulumi.export(output_name, getattr(machine, attribute))
    if machine.nodes is not None:  # several machines only: a one-machine stack's outputs stay as they were
        pulumi.export(NODES_OUTPUT, machine.nodes)
    return machine
