"""What the runner tells the supervisor about a run, and where things live in a run folder."""

import json
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional


@dataclass
class SupervisorConfig:
    run_id: str
    venv_cache: str
    module: Optional[str] = None
    command: List[str] = field(default_factory=list)
    args: List[str] = field(default_factory=list)  # appended to the module's or the command's arguments (sweep trials)
    env: List[List[str]] = field(default_factory=list)
    install_script: Optional[str] = None
    max_runtime_s: int = 12 * 3600
    sync_interval_s: int = 60
    stop_grace_s: int = 15
    shutdown_after: bool = False
    dataset_uri: Optional[str] = None  # a bucket to pull the dataset from (a local dataset is uploaded)
    output_uri: Optional[str] = None  # where outputs and logs are synced; None: the run's store/ folder
    # The interpreter the training's venv is made from and whose packages it sees (the local
    # target: the one running trainrig); None: the supervisor's own.
    training_python: Optional[str] = None
    telemetry_interval_s: float = 5.0
    disk_warn_below_mb: Optional[float] = None  # None: telemetry.low_disk_mb's rule
    # Spot runs (runner/remote/preemption.py): the cloud whose preemption notice to watch, and its
    # metadata server's address (None: the cloud's own; tests give a local imitation).
    preemption_watch: Optional[str] = None
    metadata_url: Optional[str] = None
    preemption_poll_s: float = 2.0
    restore_from_store: bool = False  # a restarted run: outputs and logs come back from the store first
    # Multi-node runs (runner/nodes.py, runner/remote/peers.py): this node's rank, every node's
    # [peer address, peer port] in rank order (empty: one node) and the secret they tell each other
    # failures with; the launcher's arguments put before the training's own (torchrun's).
    node_rank: int = 0
    peers: List[List] = field(default_factory=list)
    peer_token: str = ""
    launcher_args: List[str] = field(default_factory=list)

    def to_json(self):
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text):
        return cls(**json.loads(text))


class RunLayout:
    """The folders and files of one run on the machine."""

    def __init__(self, run_dir):
        self.dir = os.path.abspath(run_dir)
        j = lambda *p: os.path.join(self.dir, *p)  # noqa: E731
        self.code, self.dataset, self.outputs, self.logs = j("code"), j("dataset"), j("outputs"), j("logs")
        self.store = j("store")
        self.status = j("status.json")
        self.config = j("config.json")
        self.supervisor_log = j("supervisor.log")
        self.train_log = j("logs", "train.log")
        self.install_log = j("logs", "install.log")
        self.metrics = j("logs", "metrics.jsonl")  # written by the training (trainrig_helpers)
        self.telemetry = j("logs", "telemetry.jsonl")  # written by the supervisor

    def index(self, folder):
        """The transfer index kept beside `folder` (never inside the user's files)."""
        return os.path.join(self.dir, ".%s.index.json" % os.path.basename(folder))

    def make(self):
        for d in (self.code, self.dataset, self.outputs, self.logs, self.store):
            os.makedirs(d, exist_ok=True)
