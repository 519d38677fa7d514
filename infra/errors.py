"""The project's exception types; every floor raises these, never a bare library error."""


class TrainrigError(Exception):
    """Something went wrong that the user should read as one sentence."""

    exit_code = 1


class BadInput(TrainrigError):
    """The user's input is wrong; nothing was started. Exit code 2."""

    exit_code = 2
