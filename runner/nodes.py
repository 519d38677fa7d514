"""Multi-node runs, on this computer's side: what each node's supervisor is told (its rank, its
peers, the environment torchrun expects) and torchrun's command line. A one-node run has no plan:
it starts exactly as before."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field

from infra.spec import Launcher, RunSpec
from runner.machine import Machine
from runner.states import Outcome

CLOUD_MASTER_PORT = 29500  # torchrun's default; the run's private network admits every port between its machines
# The supervisors' failure messages (runner/remote/peers.py): away from torch's defaults (29500 the
# master port, 29400 c10d's), which a user's own launcher may take.
CLOUD_PEER_PORT = 29350
ALL = "all"  # `logs --node all`: every node's log, each line prefixed with `[K] `


def free_port() -> int:
    """A port free on this computer's loopback now (the local target's nodes all live here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class NodeLaunch:
    """What one node's supervisor gets beyond a one-node run's config."""

    rank: int
    env: tuple[tuple[str, str], ...]
    launcher_args: tuple[str, ...]  # put between the training venv's python and the training's own arguments


@dataclass(frozen=True)
class NodePlan:
    master_addr: str
    master_port: int
    peers: tuple[tuple[str, int], ...]  # every node's (peer address, peer port), rank order
    token: str  # the secret the supervisors' failure messages carry
    nodes: tuple[NodeLaunch, ...]


def gpus_per_node(spec: RunSpec) -> int:
    """The node's GPUs: the accelerator count of a GPU machine; 0 on the CPU (local) and on a TPU host."""
    if spec.cloud is None:
        return 0
    from infra.catalog import load

    return 0 if load().is_tpu(spec.cloud.accelerator) else spec.cloud.count


def torchrun_args(spec: RunSpec, rank: int, master: str, port: int, nnodes: int) -> tuple[str, ...]:
    """`-m torch.distributed.run ...` for node `rank`, no restarts (trainrig's own restarts handle a
    lost machine). Static rendezvous on rank 0's address, not c10d: c10d numbers the nodes by their
    sorted addresses and pids, so torch's global rank 0 (the one that usually writes the checkpoint)
    could land on another node than trainrig's rank 0, whose outputs and log come home. With a
    static rendezvous torch's ranks follow TRAINRIG_NODE_RANK. `nnodes`: the run's machines (a TPU
    pod slice's hosts count, though its spec says one node)."""
    return ("-m", "torch.distributed.run", "--nnodes", str(nnodes),
            "--nproc-per-node", str(max(gpus_per_node(spec), 1)), "--node-rank", str(rank),
            "--rdzv-backend", "static", "--master-addr", master, "--master-port", str(port),
            "--max-restarts", "0")


def plan(spec: RunSpec, machines: list[Machine]) -> NodePlan | None:
    if len(machines) < 2:
        return None
    local = spec.target == "local"
    master = machines[0].peer_host
    port = free_port() if local else CLOUD_MASTER_PORT
    peers = tuple((m.peer_host, free_port() if local else CLOUD_PEER_PORT) for m in machines)
    gpus = gpus_per_node(spec)
    common = (("TRAINRIG_NUM_NODES", str(len(machines))),
              ("TRAINRIG_NODE_IPS", ",".join(m.peer_host for m in machines)),
              ("TRAINRIG_MASTER_ADDR", master), ("TRAINRIG_GPUS_PER_NODE", str(gpus)),
              ("MASTER_ADDR", master), ("MASTER_PORT", str(port)),
              ("WORLD_SIZE", str(len(machines) * max(gpus, 1))))
    launches = tuple(
        NodeLaunch(rank, (("TRAINRIG_NODE_RANK", str(rank)), *common, ("NODE_RANK", str(rank))),
                   torchrun_args(spec, rank, master, port, len(machines)) if spec.launcher == Launcher.TORCHRUN else ())
        for rank, m in enumerate(machines))
    return NodePlan(master, port, peers, secrets.token_hex(16), launches)


def worst(outcomes: list[str]) -> int:
    """The index of the worst outcome among the nodes' (a failure over a stop over a success). A
    machine taken away (preempted, lost) outranks a failure: a node's loss fails its peers'
    collectives, and the run's outcome must say the restartable loss, not the failure it caused (a
    genuine failure shows again on the new machines, within the restart budget)."""
    order = (Outcome.SUCCEEDED, Outcome.STOPPED, Outcome.TIMED_OUT, Outcome.INSTALL_FAILED, Outcome.FAILED,
             Outcome.PREEMPTED, Outcome.LOST)
    return max(range(len(outcomes)), key=lambda i: (order.index(outcomes[i]) if outcomes[i] in order else len(order), -i))


def which_nodes(record_nodes: int, node: int | str, run_id: str) -> list[int]:
    """The ranks `logs --node` names: one, or every one for `all`."""
    from runner.errors import BadInput

    if node == ALL:
        return list(range(record_nodes))
    if not isinstance(node, int) or not 0 <= node < record_nodes:
        raise BadInput(f"run {run_id} has {record_nodes} node(s): give --node 0{f' to {record_nodes - 1}' if record_nodes > 1 else ''}"
                       f" or --node all.")
    return [node]


@dataclass
class Prefixer:
    """`[K] ` before every line of node K's log. Only whole lines are handed on (a line cut across
    chunks waits for its end), so nodes' logs interleaved as they come never mix inside a line;
    `flush()` hands on the last line if it never ended, ending it. A line longer than MAX_HELD (a progress bar
    redrawn with `\r` and no newline) is handed on as it is, rather than held without bound."""

    rank: int
    _tag: bytes = field(init=False, default=b"")
    _held: bytes = field(init=False, default=b"")
    _mid_line: bool = field(init=False, default=False)  # what was handed on last did not end its line

    MAX_HELD = 64 * 1024

    def __post_init__(self) -> None:
        self._tag = f"[{self.rank}] ".encode()

    def feed(self, data: bytes) -> bytes:
        data = self._held + data
        cut = data.rfind(b"\n") + 1
        if not cut and len(data) <= self.MAX_HELD:
            self._held = data
            return b""
        if not cut:
            cut = len(data)
        self._held = data[cut:]
        return self._lines(data[:cut])

    def flush(self) -> bytes:
        """The last line, ended with a newline here (in an interleaved view the next node's line
        must not go on from it)."""
        rest, self._held = self._held, b""
        return self._lines(rest + b"\n") if rest or self._mid_line else b""

    def _lines(self, text: bytes) -> bytes:
        if not text:
            return b""
        ends = text.endswith(b"\n")
        body = text[:-1] if ends else text
        out = (b"" if self._mid_line else self._tag) + body.replace(b"\n", b"\n" + self._tag) + (b"\n" if ends else b"")
        self._mid_line = not ends
        return out
