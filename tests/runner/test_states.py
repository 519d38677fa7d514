"""The enums name every state, phase and outcome both sides of the wire use, and nothing else."""

import json

from runner import states
from runner.remote import phases
from runner.remote.status import Status
from runner.states import MachinePhase, Outcome


def test_both_sides_of_the_wire_use_one_definition_and_status_json_keeps_its_strings() -> None:
    assert states.MachinePhase is phases.MachinePhase and states.Outcome is phases.Outcome
    assert all(isinstance(o, Outcome) for o in states.RESTARTABLE)
    s = Status(run_id="r")
    s.enter(MachinePhase.PULLING_DATASET)
    s.outcome = Outcome.INSTALL_FAILED
    raw = json.loads(json.dumps(s.to_dict()))
    assert (raw["phase"], raw["outcome"], raw["phases"][0][0]) == ("pulling dataset", "install_failed", "pulling dataset")
    back = Status.from_dict(raw)
    assert back.phase is MachinePhase.PULLING_DATASET and back.outcome is Outcome.INSTALL_FAILED
    # A phase a newer trainrig wrote stays readable, as its string.
    assert Status.from_dict(dict(raw, phase="compiling", outcome=None)).phase == "compiling"
