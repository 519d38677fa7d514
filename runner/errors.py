"""Errors of the runner floor; all are TrainrigError, so the command line maps them to exit codes."""

from infra.errors import BadInput, TrainrigError


class Unreachable(TrainrigError):
    """The machine cannot be reached over SSH (bad input when it happens at `up`, see lifecycle)."""


class HostKeyMismatch(BadInput):
    """The machine's host key is not the pinned one: refuse, never trust it blindly."""


class AuthFailed(BadInput):
    """The machine refused our key."""


class RunNotFound(BadInput):
    """No run of that id in the journal."""


class RemoteFailed(TrainrigError):
    """A trainrig tool on the machine failed (a bug, a full disk, a broken Python)."""


__all__ = ["AuthFailed", "BadInput", "HostKeyMismatch", "RemoteFailed", "RunNotFound", "TrainrigError", "Unreachable"]
