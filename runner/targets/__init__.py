"""Where a run's machine comes from: this computer (`local`) or a machine the user owns (`ssh`)."""

from __future__ import annotations

from runner.targets.base import Target


def get_target(name: str) -> Target:
    if name == "local":
        from runner.targets.local import LocalTarget

        return LocalTarget()
    if name == "ssh":
        from runner.targets.ssh_host import SshTarget

        return SshTarget()
    from runner.errors import BadInput

    raise BadInput(f"the target {name!r} is not known: choose local or ssh.")
