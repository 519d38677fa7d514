"""The run's status file on the machine: written atomically by the supervisor, read by everyone."""

import os
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from . import slots
from .phases import RESTARTABLE, MachinePhase, Outcome, known  # noqa: F401 (RESTARTABLE: imported from here)


def now_iso():
    return _iso(time.time())


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


@dataclass
class Gpu:
    name: str
    memory_mb: int
    driver: str


@dataclass
class MachineFacts:
    hostname: str = ""
    os: str = ""
    cpu_model: str = ""
    cpus: int = 0
    memory_gb: float = 0.0
    python: str = ""
    gpus: List[Gpu] = field(default_factory=list)
    gpu_note: str = ""


@dataclass
class Status:
    run_id: str
    phase: MachinePhase = MachinePhase.PREPARING
    outcome: Optional[Outcome] = None
    reason: str = ""
    exit_code: Optional[int] = None
    supervisor_pid: Optional[int] = None
    training_pid: Optional[int] = None
    step_pid: Optional[int] = None  # the step running now (venv, pip, install script, training)
    phases: List[List[str]] = field(default_factory=list)
    started_at: str = ""
    ended_at: str = ""
    code_hash: str = ""
    dataset_hash: str = ""
    requirements: Optional[str] = None
    frozen_requirements: Optional[str] = None
    venv_reused: Optional[bool] = None
    install_tail: List[str] = field(default_factory=list)
    last_sync_at: str = ""
    output_location: str = ""
    pull_progress: List[int] = field(default_factory=list)  # [bytes, files] of the dataset pull so far
    sync_error: str = ""
    warning: str = ""  # something that may soon end the training (a nearly full disk); '' when all is well
    venv_dir: str = ""  # the training's environment (TensorBoard runs from it)
    preemption: str = ""  # the cloud's preemption notice as the metadata server gave it
    restored_files: int = 0  # a restarted run: the files brought back from the store before training
    # The last sync of outputs and logs after the training: None until it ran, False if it did not
    # finish (a full disk, a failing bucket: sync_error says why), so nothing may be destroyed yet.
    final_sync_ok: Optional[bool] = None
    seq: int = 0  # counts the saves: the newest of status.json and its reserved slot wins
    machine: MachineFacts = field(default_factory=MachineFacts)

    @property
    def done(self):
        """Over for good: finished (outcome known and the final sync made), or its supervisor gone.
        An outcome alone is not enough: the last sync of outputs follows it."""
        return self.phase == MachinePhase.FINISHED or self.outcome == Outcome.LOST

    def settle_dead_supervisor(self):
        """The supervisor is gone before `finished`: say what that means for this run."""
        if self.outcome is None:
            self.outcome = Outcome.LOST
            self.reason = "the supervisor on the machine is gone without a result (was the machine restarted?)"
        else:
            self.reason = (self.reason + "; " if self.reason else "") + "the last sync of outputs may not have finished"
        if self.final_sync_ok is None:
            # Outputs written since the last sync are on the machine only: `trainrig download` runs
            # the sync again (tools `resync`), and `run` keeps the machine till then.
            self.final_sync_ok = False
            self.sync_error = self.sync_error or "the supervisor ended before its last sync"
        self.phase = MachinePhase.FINISHED

    def enter(self, phase):
        self.phase = phase
        self.phases.append([phase, now_iso()])

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        m = dict(d.pop("machine", None) or {})
        m["gpus"] = [Gpu(**g) for g in m.get("gpus") or []]
        # Enums where this version knows the string (JSON holds their values); a newer one's stays a string.
        d["phase"] = known(MachinePhase, d.get("phase", MachinePhase.PREPARING))
        d["outcome"] = known(Outcome, d.get("outcome"))
        fields = set(cls.__dataclass_fields__)
        return cls(machine=MachineFacts(**m), **{k: v for k, v in d.items() if k in fields})


def reserve_status(path):
    """Room for the status made now, while there is some: saves go there once the disk is full."""
    return slots.reserve(path)


def _compact(d):
    """The status without its bulky, informational parts, for a reserved slot."""
    return dict(d, requirements=None, frozen_requirements=None, install_tail=d["install_tail"][-5:])


def write_status(path, status):
    """Save atomically; on a full disk into the reserved slot. Returns "file" or "reserve"."""
    status.seq += 1
    where, status.seq = slots.save(path, status.to_dict(), "seq", _compact)
    return where


def status_stamp(path):
    """Changes whenever a new status is saved (to the file or its reserved slot): cheap to poll."""
    try:
        st = os.stat(path)
        primary = (st.st_ino, st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        primary = None
    return primary, slots.reserve_seq(path)


def read_status(path):
    """The newest saved status; FileNotFoundError when none was ever saved."""
    return Status.from_dict(slots.load(path, "seq"))
