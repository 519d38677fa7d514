"""A run's states, phases and outcomes as enums whose values are the strings the journal, the status
file and the wire already use, so `RunState.UP == "up"` and old records read as they are.

The machine's phases and the outcomes are defined once, in runner/remote/phases.py (the machine's
own code uses them); they are re-exported here beside this computer's own states and phases.
"""

from runner.remote.phases import RESTARTABLE, MachinePhase, Outcome, known, parse
from runner.remote.phases import StrEnum as _StrEnum

__all__ = ["HAS_MACHINE", "RESTARTABLE", "ClientPhase", "MachinePhase", "Outcome", "RunState", "known", "parse"]


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
