"""The Pulumi Automation API, wrapped: one stack per run in trainrig's Pulumi project.

State goes to a local folder under the state folder (no Pulumi account needed) unless
PULUMI_BACKEND_URL names another backend (a team bucket). Secrets are encrypted with
PULUMI_CONFIG_PASSPHRASE(_FILE), or with a passphrase generated once and kept 0600 beside the state.
`up` and `destroy` block; Pulumi's output reaches `on_output` line by line (from Pulumi's thread).
`pulumi` is imported here only, so nothing else pays for it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from infra.engine_errors import Failure, explain
from infra.engine_outputs import StackOutputs, nodes_from_stack
from infra.errors import BadInput, EngineFailed, EngineMissing, TrainrigError

OutputSink = Callable[[str], None]
INSTALL_PULUMI = "curl -fsSL https://get.pulumi.com | sh"
EXTRAS = {"gcp": "pulumi_gcp", "aws": "pulumi_aws"}
TPU_NODE_TYPE = "gcp:tpu/v2Vm:V2Vm"  # infra/components/gcp_tpu_machine.py's machine


def find_pulumi() -> Path | None:
    found = shutil.which("pulumi")
    if found:
        return Path(found)
    home = Path.home() / ".pulumi" / "bin" / "pulumi"  # where get.pulumi.com installs it
    return home if home.is_file() else None


def check_installed(cloud: str) -> None:
    """Refuse, before anything is written, a cloud run that cannot work on this computer."""
    import importlib.util

    missing = [m for m in ("pulumi", EXTRAS[cloud]) if importlib.util.find_spec(m) is None]
    if missing:
        raise EngineMissing(
            f"the {cloud} target needs {' and '.join(missing)}: install them with `pip install -e '.[{cloud}]'` "
            "in trainrig's folder."
        )
    if find_pulumi() is None:
        raise EngineMissing(
            f"the Pulumi CLI is not installed (trainrig drives it to create the {cloud} machine): install it with "
            f"`{INSTALL_PULUMI}` (see https://www.pulumi.com/docs/install/), open a new shell, and try again."
        )


def engine_env(state_dir: Path) -> dict[str, str]:
    """The variables that make plain `pulumi` see the same stacks as trainrig (see `trainrig pulumi-env`)."""
    env = {"PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_PYTHON_CMD": sys.executable}
    backend = os.environ.get("PULUMI_BACKEND_URL")
    if not backend:
        folder = state_dir / "pulumi"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        backend = folder.as_uri()
    env["PULUMI_BACKEND_URL"] = backend
    if not (os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase_file(state_dir))
    return env


def passphrase_file(state_dir: Path) -> Path:
    """Made once, readable by the owner alone; losing it loses the stacks' secrets (not the machines)."""
    path = state_dir / "pulumi-passphrase"
    if path.exists():
        return path
    # Two first runs at once both find no file: each writes its own whole candidate, and a hard link
    # (which fails if the name exists) publishes exactly one; the loser uses the winner's. The file
    # never appears half written, as it could between an O_EXCL create and its write.
    candidate = state_dir / f".pulumi-passphrase.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass  # another run published its passphrase first: that one is the project's
    finally:
        candidate.unlink(missing_ok=True)
    return path


class Engine:
    def __init__(self, project_dir: Path, state_dir: Path, on_output: OutputSink = lambda _line: None):
        self.project_dir = project_dir
        self.env = engine_env(state_dir)
        self.on_output = on_output

    def _stack(self, run_id: str, create: bool, missing_ok: bool = False):  # type: ignore[no-untyped-def]
        from pulumi import automation as auto

        pulumi = find_pulumi()
        if pulumi is None:
            raise EngineMissing(f"the Pulumi CLI is not installed: install it with `{INSTALL_PULUMI}`, then try again.")
        try:
            command = auto.PulumiCommand(root=str(pulumi.parent.parent) if pulumi.parent.name == "bin" else None)
            opts = auto.LocalWorkspaceOptions(work_dir=str(self.project_dir), env_vars=self.env,
                                              secrets_provider="passphrase", pulumi_command=command)
            if create:
                # Never take over a stack this `up` did not make: its failure clean-up would destroy it.
                return auto.create_stack(stack_name=run_id, work_dir=str(self.project_dir), opts=opts)
            return auto.select_stack(stack_name=run_id, work_dir=str(self.project_dir), opts=opts)
        except auto.errors.StackAlreadyExistsError as e:
            raise BadInput(
                f"a Pulumi stack named {run_id} already exists in {self.env['PULUMI_BACKEND_URL']} (made by another "
                f"computer, a plain `pulumi up`, or a run whose journal was lost): `pulumi destroy -s {run_id}` and "
                f"`pulumi stack rm {run_id} --preserve-config` remove it, or choose another code or dataset name."
            ) from e
        except auto.errors.StackNotFoundError as e:
            if missing_ok:
                raise _NoStack() from e
            raise EngineFailed(f"run {run_id} has no Pulumi stack in {self.env['PULUMI_BACKEND_URL']}: "
                               f"`trainrig up` creates it (PULUMI_BACKEND_URL picks another backend).") from e
        except auto.errors.CommandError as e:
            raise self._explain(e, Failure("select", run_id)) from e
        except (OSError, subprocess.CalledProcessError, auto.errors.InvalidVersionError) as e:
            raise EngineMissing(f"the Pulumi CLI at {pulumi} cannot be used ({e}): reinstall it with `{INSTALL_PULUMI}`.") from e

    @staticmethod
    def _explain(e: Exception, failure: Failure) -> TrainrigError:
        from pulumi import automation as auto

        # CommandError keeps only its text: "code: N / stdout: ... / stderr: ...".
        return explain(failure, str(e), busy=isinstance(e, auto.errors.ConcurrentUpdateError))

    def create(self, run_id: str) -> None:
        """Make the run's empty stack; refuse (before any config is written) one that exists already."""
        self._stack(run_id, create=True)

    def up(self, failure: Failure) -> StackOutputs:
        """Deploy the run's stack (made by `create`); if that fails, destroy what it made before raising."""
        from pulumi import automation as auto

        stack = self._stack(failure.run_id, create=False)
        try:
            result = stack.up(on_output=self.on_output, color="never")
        except auto.errors.CommandError as e:
            error = self._explain(e, failure)
            if isinstance(e, auto.errors.ConcurrentUpdateError):
                raise error from e  # someone else's update: never destroy under it
            self.on_output(f"trainrig: pulumi up failed; destroying what it created ({error})")
            try:
                stack.destroy(on_output=self.on_output, color="never")
            except auto.errors.CommandError as d:
                cleanup = self._explain(d, Failure("destroy", failure.run_id))
                raise type(error)(f"{error} The clean-up failed too ({cleanup}); `trainrig down {failure.run_id}` "
                                  "tries again, `trainrig ls` shows the run meanwhile.") from e
            raise error from e
        return _outputs({k: v.value for k, v in result.outputs.items()}, failure.run_id)

    def outputs(self, run_id: str) -> StackOutputs:
        from pulumi import automation as auto

        stack = self._stack(run_id, create=False)
        try:
            return _outputs({k: v.value for k, v in stack.outputs().items()}, run_id)
        except auto.errors.CommandError as e:
            raise self._explain(e, Failure("outputs", run_id)) from e

    def destroy(self, run_id: str, remove: bool = True) -> None:
        """Destroy every resource of the run's stack, then the stack itself (not its config file)."""
        from pulumi import automation as auto

        try:
            stack = self._stack(run_id, create=False, missing_ok=True)
        except _NoStack:
            return  # never created, or already removed
        try:
            # First the cloud's truth: what was deleted outside Pulumi (a reclaimed spot VM) leaves
            # the state, and so do an interrupted `up`'s pending creates, which block a refresh run
            # without a terminal; whatever those made carries the run's labels, and the sweep after
            # the destroy (runner/leftovers.py) deletes it.
            stack.refresh(on_output=self.on_output, color="never", clear_pending_creates=True)
            stack.destroy(on_output=self.on_output, color="never")
            if remove:
                # The config file stays: the run can be provisioned again from it (`trainrig up RUN`).
                stack.workspace.remove_stack(run_id, preserve_config=True)
        except auto.errors.CommandError as e:
            raise self._explain(e, Failure("destroy", run_id)) from e

    def release_tpu(self, run_id: str) -> list[str]:
        """Delete the run's TPU node alone (`pulumi destroy --target`): a TPU VM whose guest halted
        may still bill, while its bucket, identity and network stay until `destroy`. Returns the
        URNs deleted; [] when the stack holds no TPU node (a GPU run, or one released already)."""
        from pulumi import automation as auto

        stack = self._stack(run_id, create=False)
        try:
            resources = stack.export_stack().deployment.get("resources", [])
            urns = [r["urn"] for r in resources if r.get("type") == TPU_NODE_TYPE]
            if urns:
                # Nothing in the stack depends on the node: without --target-dependents Pulumi refuses
                # rather than delete anything else, should that ever change.
                stack.destroy(target=urns, target_dependents=False, on_output=self.on_output, color="never")
        except auto.errors.CommandError as e:
            raise self._explain(e, Failure("destroy", run_id)) from e
        return urns

    def stacks(self) -> list[str]:
        """Every stack of trainrig's project in the backend (runs this computer may not know of)."""
        from pulumi import automation as auto

        pulumi = find_pulumi()
        if pulumi is None:
            raise EngineMissing(f"the Pulumi CLI is not installed: install it with `{INSTALL_PULUMI}`, then try again.")
        try:
            command = auto.PulumiCommand(root=str(pulumi.parent.parent) if pulumi.parent.name == "bin" else None)
            ws = auto.LocalWorkspace(work_dir=str(self.project_dir), env_vars=self.env, pulumi_command=command)
            return sorted(s.name for s in ws.list_stacks())
        except auto.errors.CommandError as e:
            raise self._explain(e, Failure("stack ls", "*")) from e
        except (OSError, subprocess.CalledProcessError, auto.errors.InvalidVersionError) as e:
            raise EngineMissing(f"the Pulumi CLI at {pulumi} cannot be used ({e}): reinstall it with `{INSTALL_PULUMI}`.") from e


class _NoStack(Exception):
    pass


def _outputs(values: dict[str, object], run_id: str) -> StackOutputs:
    try:
        return StackOutputs(
            address=str(values["address"]), ssh_user=str(values["sshUser"]), host_key=str(values["hostKey"]),
            output_bucket=str(values["outputBucket"]), hourly_price=float(values["hourlyPrice"]),  # type: ignore[arg-type]
            nodes=nodes_from_stack(values.get("nodes")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise TrainrigError(f"run {run_id}'s stack lacks the output {e}: was it made by another program? "
                            f"`pulumi stack output -s {run_id}` shows what it has.") from e
