"""What the runner needs from a run's stack: the outputs the program exports (infra/program.py)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class StackOutputs:
    address: str
    ssh_user: str
    host_key: str  # the machine's public host key, pinned
    output_bucket: str
    hourly_price: float  # USD, the catalog's on-demand or spot price
