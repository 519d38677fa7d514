"""What every run machine component gives the runner: the five outputs the program exports."""

from __future__ import annotations

import pulumi

from infra.stack_inputs import StackInputs


class MachineComponent(pulumi.ComponentResource):
    address: pulumi.Output[str]
    ssh_user: pulumi.Output[str]
    host_key: pulumi.Output[str]
    output_bucket: pulumi.Output[str]
    hourly_price: pulumi.Output[float]

    def _publish(self, address: pulumi.Output[str], ssh_user: str, inputs: StackInputs,
                 output_bucket: pulumi.Output[str]) -> None:
        self.address = address
        self.ssh_user = pulumi.Output.from_input(ssh_user)
        self.host_key = pulumi.Output.from_input(inputs.host_key.public_openssh.strip())
        self.output_bucket = output_bucket
        self.hourly_price = pulumi.Output.from_input(inputs.offer.hourly_usd)
        self.register_outputs({
            "address": self.address, "ssh_user": self.ssh_user, "host_key": self.host_key,
            "output_bucket": self.output_bucket, "hourly_price": self.hourly_price,
        })
