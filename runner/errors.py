"""Errors of the runner floor; all are TrainrigError, so the command line maps them to exit codes."""

from infra.errors import BadInput, TrainrigError
from runner.states import RunState


class Unreachable(TrainrigError):
    """The machine cannot be reached over SSH (bad input when it happens at `up`, see lifecycle)."""


class HostKeyMismatch(BadInput):
    """The machine's host key is not the pinned one: refuse, never trust it blindly."""


class AuthFailed(BadInput):
    """The machine refused our key."""


class RunNotFound(BadInput):
    """No run of that id in the journal."""


class AlreadyTraining(BadInput):
    """`start` on a run whose training is still going: refused before anything on the machine changes."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.follow, self.stop = f"trainrig logs {run_id} -f", f"trainrig stop {run_id}"
        super().__init__(f"run {run_id} is already training: `{self.follow}` follows it, `{self.stop}` stops it.")


class NoMachine(BadInput):
    """The run holds no machine to do this on; `way_out` is the command that fits its state: a run
    left half made or half destroyed (an `up` or `down` that was killed) is finished by `down`."""

    def __init__(self, run_id: str, state: str, doing: str = ""):
        self.run_id, self.state = run_id, state
        half = state in (RunState.PROVISIONING, RunState.DESTROYING)
        self.way_out = f"trainrig down {run_id}" if half else f"trainrig up {run_id}"
        why = ("was left half " + ("made" if state == "provisioning" else "destroyed") + " by an interrupted "
               + ("`up`" if state == "provisioning" else "`down`")) if half else f"is {state} and holds no machine"
        super().__init__(f"run {run_id} {why}{doing}: `{self.way_out}` " + ("finishes that first." if half else "provisions it again."))


class RemoteFailed(TrainrigError):
    """A trainrig tool on the machine failed (a bug, a full disk, a broken Python)."""


class OutputsKept(TrainrigError):
    """A run's outputs are not all on this computer (its final sync or the download did not finish):
    its machine is kept, and the message says how to finish (exit 1)."""


class ConnectionLost(RemoteFailed):
    """The connection to the machine broke while `doing` something; `retry` is the command that
    takes it up again from where this computer stands (it differs after `run` destroyed the machine)."""

    def __init__(self, doing: str, why: str, retry: str):
        super().__init__(f"the connection to the machine was lost while {doing} ({why}): `{retry}` tries again")
        self.doing, self.why, self.retry = doing, why, retry


__all__ = ["AlreadyTraining", "AuthFailed", "BadInput", "ConnectionLost", "HostKeyMismatch", "NoMachine", "OutputsKept", "RemoteFailed", "RunNotFound", "TrainrigError", "Unreachable"]
