"""What the runner needs from a run's stack: the outputs the program exports (infra/program.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeEndpoint:
    """One machine of a run with several (`--nodes N`, or a TPU pod slice's workers), in rank order."""

    address: str  # public: where trainrig logs in
    private_address: str  # on the run's own network: where the other nodes reach it
    host_key: str  # its public host key, pinned (the run's one host key, on each of its machines)


@dataclass(frozen=True)
class StackOutputs:
    address: str  # rank 0's public address
    ssh_user: str
    host_key: str  # the machine's public host key, pinned
    output_bucket: str
    hourly_price: float  # USD, the catalog's on-demand or spot price, for all the run's machines together
    # Every node in rank order (stack output `nodes`); empty for a one-machine run (its stacks export none).
    nodes: tuple[NodeEndpoint, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # A journal's record gives the nodes back as dicts (dataclasses.asdict); keep them typed.
        typed = tuple(n if isinstance(n, NodeEndpoint) else NodeEndpoint(**n) for n in self.nodes or ())
        object.__setattr__(self, "nodes", typed)


# The stack output `nodes`: a list of these keys per node (camelCase, like the other stack outputs).
NODE_KEYS = {"address": "address", "privateAddress": "private_address", "hostKey": "host_key"}


def nodes_from_stack(value: object) -> tuple[NodeEndpoint, ...]:
    """The `nodes` stack output, as Pulumi hands it back (a list of dicts), typed; () when absent."""
    if not value:
        return ()
    if not isinstance(value, list):
        raise TypeError(f"nodes is {type(value).__name__}, not a list")
    return tuple(NodeEndpoint(**{attr: str(node[key]) for key, attr in NODE_KEYS.items()}) for node in value)
