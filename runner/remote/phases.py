"""The machine's phases and a training's outcomes, as status.json carries them: one definition for both
sides of the wire (runner/states.py re-exports them). str Enums: a member is its string, so JSON
written from them, and old records read into them, hold the same strings as before.

Standard library only, Python 3.8+: this runs on the machine.
"""

from enum import Enum


class StrEnum(str, Enum):
    def __str__(self):  # f"{phase}" and "%s" are its value on every Python (3.12 changed format() of mixins)
        return str(self.value)


class MachinePhase(StrEnum):
    """What the machine's supervisor does (status.json's `phase`)."""

    PREPARING = "preparing"
    RESTORING = "restoring"  # a restarted run: outputs and logs back from the store
    PULLING_DATASET = "pulling dataset"
    INSTALLING = "installing"
    TRAINING = "training"
    SYNCING = "syncing"
    FINISHED = "finished"


class Outcome(StrEnum):
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


# The machine was taken away under the training (a cloud's preemption notice), or vanished with it:
# a run with restarts left goes on on a new machine from its last synced checkpoint.
RESTARTABLE = (Outcome.PREEMPTED, Outcome.LOST)


class StopReason(StrEnum):
    """Why the supervisor stops a training before it ends by itself (the machine's side only)."""

    STOPPED = "stopped"  # on request (SIGTERM: `trainrig stop`, or the machine shutting down)
    TIMED_OUT = "timed_out"  # the max runtime
    PREEMPTED = "preempted"  # the cloud's preemption notice
    PEER_FAILED = "peer_failed"  # multi-node: another node's training failed


def parse(enum, value):
    """`value` as a member of `enum`, or None for None and for a string this version does not know
    (a newer trainrig may have written it): readers never crash on it."""
    try:
        return None if value is None else enum(value)
    except ValueError:
        return None


def known(enum, value):
    """`value` as a member of `enum` when it is one; else as it is (a newer version's phase is still
    shown, and written back, as the string it was)."""
    member = parse(enum, value)
    return value if member is None else member
