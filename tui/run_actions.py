"""What the keys do to a run: each action is a worker that calls the runner (runner/lifecycle.py) as
the command line does, and turns the runner's typed refusals into buttons (their ways out).
The runner's SSH side is imported when first used, so the first screen does not wait for it."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from typing import TYPE_CHECKING

from infra.errors import TrainrigError
from runner.errors import AlreadyTraining, NoMachine
from runner.run_view import RunView
from runner.states import HAS_MACHINE, RunState

if TYPE_CHECKING:  # the modals and the spec load when an action first needs them, not before the first screen
    from infra.spec import RunSpec

ACTIONS = ("start", "stop", "download", "destroy", "shell", "follow", "tensorboard")
TENSORBOARD_PORT = 6006  # or the next free one


class RunActions:
    """Mixed into the app, which provides `lifecycle(run_id)`, `views`, `outputs_root`, `follow` and
    Textual's `run_worker`, `push_screen_wait`, `notify`, `suspend`."""

    outputs_root: Path
    views: dict[str, RunView]
    tunnels: dict[str, str]  # run id -> TensorBoard's local URL while its tunnel is open

    def act_on_run(self, run_id: str, action: str) -> None:
        if action not in ACTIONS:
            raise ValueError(action)
        if action == "follow":
            self.follow(run_id)  # type: ignore[attr-defined]
            return
        if action == "tensorboard":
            running = [w for w in self.workers if w.group == f"tb:{run_id}" and w.is_running]  # type: ignore[attr-defined]
            for worker in running:  # the key toggles: a second press closes the tunnel
                worker.cancel()
                self.notify(f"TensorBoard for run {run_id} stopped; the training is untouched")  # type: ignore[attr-defined]
            if not running:
                self.run_worker(self._tensorboard(run_id), name=f"tensorboard {run_id}", group=f"tb:{run_id}",  # type: ignore[attr-defined]
                                exclusive=True, exit_on_error=False, description="tensorboard")
            return
        work = getattr(self, f"_{action}")(run_id)
        # One action per run at a time; an error is a notification (the app's worker handler).
        self.run_worker(work, name=f"{action} {run_id}", group=f"act:{run_id}", exclusive=False,  # type: ignore[attr-defined]
                        exit_on_error=False, description=action)

    async def launch(self, spec: RunSpec) -> None:
        """From the new-run form: provision, start, follow."""
        life = self.lifecycle(spec.run_id)  # type: ignore[attr-defined]
        self.notify(f"provisioning run {spec.run_id} ({spec.target})")  # type: ignore[attr-defined]
        await life.up(spec)
        self.reread_journal()  # type: ignore[attr-defined]
        await self._start(spec.run_id)

    async def _start(self, run_id: str) -> None:
        life = self.lifecycle(run_id)  # type: ignore[attr-defined]
        try:
            await life.start(run_id, follow_log=False)
        except AlreadyTraining:
            self.notify(f"run {run_id} is already training: following it")  # type: ignore[attr-defined]
        except NoMachine as e:
            await self._no_machine(e)
            return
        self.reread_journal()  # type: ignore[attr-defined]
        self.follow(run_id, again=True)  # type: ignore[attr-defined]

    async def _no_machine(self, e: NoMachine) -> None:
        from tui.screens.ways_out import WaysOut

        half = e.state in (RunState.PROVISIONING, RunState.DESTROYING)
        ways = [("destroy", "Finish destroying it")] if half else []
        choice = await self.push_screen_wait(WaysOut(f"Run {e.run_id} holds no machine", str(e), ways))  # type: ignore[attr-defined]
        if choice == "destroy":
            await self._destroy(e.run_id)

    async def _stop(self, run_id: str) -> None:
        status = await self.lifecycle(run_id).stop(run_id)  # type: ignore[attr-defined]
        self.reread_journal()  # type: ignore[attr-defined]
        self.notify(f"run {run_id}: {status.outcome if status and status.done else 'not training'}")  # type: ignore[attr-defined]

    async def _download(self, run_id: str) -> Path:
        folder = await self.lifecycle(run_id).download(run_id, self.outputs_root)  # type: ignore[attr-defined]
        self.reread_journal()  # type: ignore[attr-defined]
        self.notify(f"run {run_id}: outputs in {folder}")  # type: ignore[attr-defined]
        return folder

    async def _destroy(self, run_id: str) -> None:
        from runner.down_checks import OutputsNotDownloaded, TrainingGoing
        from tui.screens.confirm_destroy import DISCARD, DOWNLOAD_FIRST, ConfirmDestroy
        from tui.screens.ways_out import WaysOut

        view = self.views[run_id]
        choice = await self.push_screen_wait(ConfirmDestroy(view))  # type: ignore[attr-defined]
        if choice is None:
            return
        if choice == DOWNLOAD_FIRST:
            await self._download(run_id)
        stop, discard = False, choice == DISCARD
        life = self.lifecycle(run_id)  # type: ignore[attr-defined]
        while True:
            # A follower would see its machine vanish and try to reconnect for minutes: end it first
            # (a refusal below leaves the run as it was, and the next journal read follows it again).
            self.workers.cancel_group(self, f"follow:{run_id}")  # type: ignore[attr-defined]
            try:
                await life.down(run_id, discard_outputs=discard, stop=stop)
                break
            except TrainingGoing as e:
                way = await self.push_screen_wait(WaysOut(  # type: ignore[attr-defined]
                    f"Run {run_id} is still training", str(e), [("stop", "Stop it and destroy")]))
                if way is None:
                    return
                stop = True
            except OutputsNotDownloaded as e:
                way = await self.push_screen_wait(WaysOut(  # type: ignore[attr-defined]
                    f"Run {run_id}'s outputs were never downloaded", str(e),
                    [("download", "Download first"), ("discard", "Discard outputs")]))
                if way is None:
                    return
                if way == "download":
                    await self._download(run_id)
                discard = way == "discard"
        self.reread_journal()  # type: ignore[attr-defined]
        self.notify(f"run {run_id} is destroyed")  # type: ignore[attr-defined]

    async def _tensorboard(self, run_id: str) -> None:
        """TensorBoard on the machine, forwarded to this computer through SSH until the key is pressed again."""
        def ready(tunnel) -> None:  # type: ignore[no-untyped-def]
            self.tunnels[run_id] = tunnel.url
            self.notify(f"TensorBoard for run {run_id}: {tunnel.url} (t again stops it)", timeout=30)  # type: ignore[attr-defined]

        try:
            await self.lifecycle(run_id).tensorboard(run_id, TENSORBOARD_PORT, ready)  # type: ignore[attr-defined]
        finally:
            self.tunnels.pop(run_id, None)

    async def _shell(self, run_id: str) -> None:
        """A login shell in the run's folder on its machine: ssh with the pinned host key only."""
        from runner.targets import get_target

        life = self.lifecycle(run_id)  # type: ignore[attr-defined]
        record = life.journal.load(run_id)
        if record.machine is None or record.state not in HAS_MACHINE:
            raise NoMachine(run_id, record.state, ", there is no machine to open a shell on")
        machine = await get_target(record.spec.target).reattach(record, life.journal)
        if record.spec.target == "local":
            # The local machine is this computer (its embedded server gives no terminals): a shell here.
            cmd, cwd = [os.environ.get("SHELL", "/bin/sh")], machine.run_dir(run_id)
            cwd = cwd if os.path.isdir(cwd) else machine.root
        else:
            known = life.journal.write_private(run_id, "ui_known_hosts", "".join(
                f"[{machine.host}]:{machine.port} {key}\n" for key in machine.host_keys).encode())
            cmd, cwd = ["ssh", "-p", str(machine.port), "-o", f"UserKnownHostsFile={known}",
                        "-o", "StrictHostKeyChecking=yes", "-o", f"HostKeyAlias=[{machine.host}]:{machine.port}"], None
            if machine.client_key:
                cmd += ["-i", machine.client_key, "-o", "IdentitiesOnly=yes"]
            cmd += ["-t", f"{machine.user}@{machine.host}",
                    f"cd {shlex.quote(machine.run_dir(run_id))} 2>/dev/null; exec \"${{SHELL:-/bin/sh}}\" -l"]
        with self.suspend():  # type: ignore[attr-defined]
            try:
                done = subprocess.run(cmd, cwd=cwd, check=False)
            except OSError as e:
                raise TrainrigError(f"could not start {cmd[0]} ({e}).") from e
        if cmd[0] == "ssh" and done.returncode == 255:
            raise TrainrigError(f"ssh could not open a shell on run {run_id}'s machine (exit 255; it said why above).")
