"""Where a run's machine comes from: this computer (`local`), a machine the user owns (`ssh`), or one
rented for the run from a cloud (`gcp`, `aws`) through its Pulumi stack."""

from __future__ import annotations

from runner.targets.base import Target


def get_target(name: str) -> Target:
    if name == "local":
        from runner.targets.local import LocalTarget

        return LocalTarget()
    if name == "ssh":
        from runner.targets.ssh_host import SshTarget

        return SshTarget()
    if name in ("gcp", "aws"):
        from runner.targets.cloud import CloudTarget

        return CloudTarget(name)
    from runner.errors import BadInput

    raise BadInput(f"the target {name!r} is not known: choose local, ssh, gcp or aws.")
