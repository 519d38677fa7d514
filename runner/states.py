"""A run's states, phases and outcomes as enums whose values are the strings the journal, the status
file and the wire already use, so `RunState.UP == "up"` and old records read as they are.

Standard library only and Python 3.8 compatible: runner/remote may use it on the machine later.
"""

from enum import Enum


class _StrEnum(str, Enum):
    def __str__(self):  # f"{state}" is its value on every Python (3.12 changed format() of mixins)
        return str(self.value)


class RunState(_StrEnum):
    """Where a run stands as seen from this computer (record.json's `state`)."""

    PROVISIONING = "provisioning"
    UP = "up"
    STARTED = "started"
    FINISHED = "finished"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"

    @property
    def holds_resources(self):
        return self is not RunState.DESTROYED

    @property
    def has_machine(self):
        return self in (RunState.UP, RunState.STARTED, RunState.FINISHED)


HAS_MACHINE = (RunState.UP, RunState.STARTED, RunState.FINISHED)  # the states in which a run holds its machine


class ClientPhase(_StrEnum):
    """What this computer does for a run (record.json's `phases`)."""

    PROVISIONING = "provisioning"
    UPLOADING_CODE = "uploading code"
    UPLOADING_DATASET = "uploading dataset"
    PREPARING_TOOLS = "preparing tools"
    STARTED = "started"
    COLLECTING = "collecting"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"


class MachinePhase(_StrEnum):
    """What the machine's supervisor does (status.json's `phase`)."""

    PREPARING = "preparing"
    RESTORING = "restoring"  # a restarted run: outputs and logs back from the store
    PULLING_DATASET = "pulling dataset"
    INSTALLING = "installing"
    TRAINING = "training"
    SYNCING = "syncing"
    FINISHED = "finished"


class Outcome(_StrEnum):
    """How a training ended (status.json's and record.json's `outcome`)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INSTALL_FAILED = "install_failed"
    TIMED_OUT = "timed_out"
    STOPPED = "stopped"
    LOST = "lost"
    PREEMPTED = "preempted"  # the cloud took the spot machine back (a restart may follow)

    @property
    def ok(self):
        return self is Outcome.SUCCEEDED


def parse(enum, value):
    """`value` as a member of `enum`, or None for None and for a string this version does not know
    (a newer trainrig may have written it): readers never crash on it."""
    try:
        return None if value is None else enum(value)
    except ValueError:
        return None
