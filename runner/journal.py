"""The run journal: one folder per run under the state folder, with record.json and the run's keys.

Writes are atomic (temporary file + rename) and mutating commands hold the run's lock, so two runs
never disturb each other and a crash never leaves a half-written record. On a full disk a record is
saved into a slot reserved beside it when the run was created (runner/remote/slots.py), so `down` can
still record what it did (and free the space) and no command is left unable to read the run.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

from infra.engine_outputs import StackOutputs
from infra.spec import RunSpec
from runner.errors import BadInput, RunNotFound
from runner.locks import exclusive
from runner.machine import Machine
from runner.remote import slots
from runner.states import RunState
from runner.workspace import state_dir

HOLDS_RESOURCES = tuple(s for s in RunState if s.holds_resources)  # every state but destroyed
RECORD_SLOT = 32 * 1024  # a record is ~2 KB (it grows by ~0.3 KB per attempt)


def utc_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


@dataclass
class Restart:
    """One attempt that ended with its machine taken away (preempted, or gone), and what it cost."""

    number: int  # 1 for the first restart
    outcome: str  # the lost attempt's: preempted or lost
    reason: str
    started_at: str  # the lost attempt's provisioning
    ended_at: str  # when trainrig saw it end
    machine: str  # the lost machine's address
    zone: str = ""
    hourly_usd: float | None = None
    cost_usd: float | None = None  # the lost attempt's machine time at its hourly price
    failed: str = ""  # why no new machine could be brought up ('' : the restart went ahead)


@dataclass
class RunRecord:
    spec: RunSpec
    state: str = "provisioning"
    created_at: str = field(default_factory=utc_now)
    machine: Machine | None = None
    local_server_pid: int | None = None
    phases: list[list[str]] = field(default_factory=list)  # client-side: [phase, utc]
    outcome: str | None = None
    reason: str = ""
    exit_code: int | None = None
    downloads: list[str] = field(default_factory=list)
    log_offset: int = 0  # where the current attempt's log starts
    stack: StackOutputs | None = None  # gcp/aws: what the run's Pulumi stack made
    stack_created: bool = False  # gcp/aws: this run made its stack (so only then may it destroy it)
    final_download: bool = False  # outputs downloaded after the training finished (not a mid-run copy)
    saved_seq: int = 0  # counts the saves: the newest of record.json and its reserved slot wins
    download_pending: str = ""  # the folder of a download begun and not completed: the next one resumes there
    max_restarts: int = 0  # new machines a preempted (or vanished) one may be replaced by
    restarts: list[Restart] = field(default_factory=list)
    attempt_started_at: str = ""  # the current machine's provisioning ('' : the run's first)
    # gcp TPU: when its node was deleted, its outputs safe in the bucket (runner/tpu_release.py); the
    # rest of the stack stays until `down`, and nothing reattaches to the node ('': not released)
    machine_released_at: str = ""
    # Multi-node runs (and TPU pod slices' hosts): every machine in rank order, nodes[0] is `machine`;
    # empty for a one-machine run (use all_nodes()).
    nodes: list[Machine] = field(default_factory=list)
    # Sweeps (runner/sweep/): the sweep this run belongs to (a slot machine or a trial), and for a
    # trial the slot run whose machine it borrows ('': its own machine; `down` leaves a borrowed one up).
    sweep: str = ""
    borrowed_from: str = ""

    def effective_spec(self) -> RunSpec:
        """The spec as the machine uses it: a cloud run without --output-store syncs to its stack's bucket."""
        if self.stack is None or self.spec.output_store or self.spec.target not in ("gcp", "aws"):
            return self.spec
        scheme = "gs" if self.spec.target == "gcp" else "s3"
        return replace(self.spec, output_store=f"{scheme}://{self.stack.output_bucket}")

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    def all_nodes(self) -> list[Machine]:
        """Every machine of the run in rank order (rank 0 first)."""
        if self.nodes:
            return list(self.nodes)
        return [self.machine] if self.machine is not None else []

    def mark(self, phase: str) -> None:
        self.phases.append([phase, utc_now()])

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        d = dict(d)
        d["spec"] = RunSpec.from_dict(d["spec"])
        d["machine"] = Machine.from_dict(d["machine"]) if d.get("machine") else None
        d["nodes"] = [Machine.from_dict(m) for m in d.get("nodes") or []]
        d["stack"] = StackOutputs(**d["stack"]) if d.get("stack") else None
        d["restarts"] = [Restart(**r) for r in d.get("restarts") or []]
        return cls(**d)


class Journal:
    def __init__(self, root: Path | None = None):
        self.root = (root or state_dir()) / "runs"

    def dir(self, run_id: str) -> Path:
        return self.root / run_id

    def key_path(self, run_id: str, name: str) -> Path:
        return self.dir(run_id) / name

    def exists(self, run_id: str) -> bool:
        path = self.dir(run_id) / "record.json"
        return path.exists() or slots.reserve_seq(str(path), RECORD_SLOT) > 0

    @staticmethod
    def _read(folder: Path) -> RunRecord:
        return RunRecord.from_dict(slots.load(str(folder / "record.json"), "saved_seq", RECORD_SLOT))

    def load(self, run_id: str) -> RunRecord:
        try:
            return self._read(self.dir(run_id))
        except FileNotFoundError:
            known = ", ".join(r.run_id for r in self.all()) or "none yet"
            raise RunNotFound(f"there is no run {run_id!r} (known runs: {known}); see `trainrig ls`.") from None

    def save(self, record: RunRecord) -> None:
        """Atomically, or on a full disk into the reserved slot; raises OSError (ENOSPC) only when
        neither has room. The first save makes the slot, while there is room."""
        d = self.dir(record.run_id)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = str(d / "record.json")
        if record.state != RunState.DESTROYED:  # a destroyed run holds nothing that must be freed
            slots.reserve(path, RECORD_SLOT)
        record.saved_seq += 1
        try:
            _, record.saved_seq = slots.save(path, record.to_dict(), "saved_seq", slot=RECORD_SLOT)
        except OSError:
            record.saved_seq -= 1
            raise

    def all(self) -> list[RunRecord]:
        out = []
        if self.root.is_dir():
            for d in sorted(self.root.iterdir()):
                try:
                    out.append(self._read(d))
                except (OSError, ValueError, TypeError, KeyError):
                    continue
        return out

    def write_private(self, run_id: str, name: str, data: bytes) -> Path:
        """A key file readable by the owner alone (created 0600, never widened)."""
        d = self.dir(run_id)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = d / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
        return path

    def forget_secrets(self, run_id: str) -> None:
        for name in ("client_key", "host_key"):
            try:
                os.unlink(self.dir(run_id) / name)
            except FileNotFoundError:
                pass

    def remove(self, run_id: str) -> None:
        shutil.rmtree(self.dir(run_id), ignore_errors=True)

    @contextmanager
    def lock(self, run_id: str, what: str) -> Iterator[None]:
        """Hold the run's lock; a second command on the same run is refused, not queued."""
        with exclusive(self.dir(run_id) / "lock",
                       f"another trainrig command is working on run {run_id} right now; wait for it to end."):
            yield
