"""The enums name every state, phase and outcome both sides of the wire use, and nothing else."""

from runner.remote import status
from runner.states import MachinePhase, Outcome


def test_the_enums_and_the_machines_lists_agree() -> None:
    assert [p.value for p in MachinePhase] == list(status.PHASES)
    assert [o.value for o in Outcome] == list(status.OUTCOMES)
    assert all(Outcome(o) for o in status.RESTARTABLE)
