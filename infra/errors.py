"""The project's exception types; every floor raises these, never a bare library error."""


class TrainrigError(Exception):
    """Something went wrong that the user should read as one sentence."""

    exit_code = 1


class BadInput(TrainrigError):
    """The user's input is wrong; nothing was started. Exit code 2."""

    exit_code = 2


class EngineMissing(BadInput):
    """The Pulumi CLI (or a cloud's Python extra) is not installed: nothing was started."""


class CloudCredentialsMissing(BadInput):
    """No credentials for the cloud: nothing was started."""


class CloudRefused(TrainrigError):
    """The cloud said no: capacity, quota, a disabled API, a missing right."""


class NoCapacity(CloudRefused):
    """The zone has no machine of that kind free right now (another zone may)."""


class StackBusy(TrainrigError):
    """Another update of the same stack is running (or one crashed and left its lock)."""


class EngineFailed(TrainrigError):
    """A Pulumi operation failed for a reason we did not recognise; the message quotes Pulumi."""
