"""What every run machine component gives the runner: the outputs the program exports."""

from __future__ import annotations

import pulumi

from infra.stack_inputs import StackInputs


class MachineComponent(pulumi.ComponentResource):
    address: pulumi.Output[str]
    ssh_user: pulumi.Output[str]
    host_key: pulumi.Output[str]
    output_bucket: pulumi.Output[str]
    hourly_price: pulumi.Output[float]
    # Several machines (`--nodes N`, a TPU pod slice's workers): each one's public and private address and
    # host key, in rank order; None for one machine, whose stack exports no `nodes` (as before).
    nodes: pulumi.Output[list[dict[str, str]]] | None = None

    def _publish(self, address: pulumi.Output[str], ssh_user: str, inputs: StackInputs,
                 output_bucket: pulumi.Output[str]) -> None:
        self.address = address
        self.ssh_user = pulumi.Output.from_input(ssh_user)
        self.host_key = pulumi.Output.from_input(inputs.host_key.public_openssh.strip())
        self.output_bucket = output_bucket
        self.hourly_price = pulumi.Output.from_input(inputs.hourly_usd)
        outputs: dict[str, object] = {
            "address": self.address, "ssh_user": self.ssh_user, "host_key": self.host_key,
            "output_bucket": self.output_bucket, "hourly_price": self.hourly_price,
        }
        if self.nodes is not None:
            outputs["nodes"] = self.nodes
        self.register_outputs(outputs)

    def _set_nodes(self, inputs: StackInputs, pairs: pulumi.Output[list], count: int) -> None:
        """`nodes` from each machine's (public, private) address in rank order, when there are several
        (`count`). Every machine of the run carries the run's one host key (made by trainrig, handed over
        at boot as for a single machine; a pod slice's workers share their metadata anyway)."""
        if count < 2:
            return
        key = inputs.host_key.public_openssh.strip()
        self.nodes = pairs.apply(
            lambda found: [{"address": str(public), "privateAddress": str(private), "hostKey": key}
                           for public, private in found])
