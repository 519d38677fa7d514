"""The supervisor's steps as processes: the training's environment and command line, running a
step in its own process group, and stopping it (SIGTERM, then SIGKILL after the grace)."""

import os
import signal
import subprocess
import threading
import time

from .peers import launcher_argv


def training_command(config, layout, venv_dir):
    """The training's command line: the entry point contract with its three folders, or the
    user's own command (which gets them as environment variables, see TrainingSteps._env)."""
    L = layout
    python = os.path.join(venv_dir, "bin", "python")
    if config.module:
        argv = [python, "-m", config.module,
                "--dataset_directory", L.dataset, "--output_directory", L.outputs, "--logs_directory", L.logs]
    else:
        argv = list(config.command)
    argv += list(config.args)  # a sweep trial's `--name value` parameters
    return launcher_argv(config, python, argv)  # multi-node: torchrun around it (peers.py)


class TrainingSteps:
    """Part of Supervisor (supervisor_loop.py): uses its layout, config, status, _lock and save()."""

    # -- stopping -------------------------------------------------------------------------------
    def request_stop(self, reason, grace_s=None):
        """Called from the SIGTERM handler and the deadline timer: no I/O here, only signals."""
        if self._stop_reason is not None:
            return
        if grace_s is not None:
            self._grace_s = grace_s
        self._stop_reason = reason
        child = self._child
        if child is not None and child.poll() is None:
            self._terminate(child)

    def _terminate(self, child):
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            return

        def kill_later():
            try:
                child.wait(self._grace_s)
            except subprocess.TimeoutExpired:
                pass
            # Also whatever it started and left behind in its group.
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        threading.Thread(target=kill_later, daemon=True).start()

    def _run_child(self, argv, log, on_start=None, **kw):
        """Run a step (venv, pip, install script, training) in its own process group, so that a
        stop or the deadline can end it and everything it started, and nothing else."""
        if self._stop_reason is not None:
            return -signal.SIGTERM
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, **kw)
        except OSError as e:
            log.write(("trainrig: cannot start %s: %s\n" % (argv[0], e)).encode())
            log.flush()
            return 127
        self._child = child
        with self._lock:
            self.status.step_pid = child.pid  # so that a forced stop can end it even without us
        self.save()
        if on_start is not None:
            on_start(child)
        if self._stop_reason is not None:  # the stop arrived while we were starting it
            self._terminate(child)
        rc = child.wait()
        self._child = None
        self._reap_group(child.pid)
        return rc

    def _reap_group(self, pgid):
        """A step is over when its process is: end what it left running in its group."""
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        end = time.monotonic() + self.config.stop_grace_s
        while time.monotonic() < end:
            time.sleep(0.1)
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _env(self, venv_dir):
        L = self.layout
        # trainrig_helpers imports with no install: its folder goes after the user's own PYTHONPATH
        # (and Python puts the script's folder before both, so a file of the user's of that name wins).
        helpers = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        env.update(
            VIRTUAL_ENV=venv_dir,
            PATH=os.path.join(venv_dir, "bin") + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
            PYTHONUNBUFFERED="1",  # the log must stream, not arrive in 4 KB blocks
            TRAINRIG_RUN_ID=self.config.run_id,
            TRAINRIG_RUN_DIR=L.dir,  # procs.RUN_DIR_MARK: how `down` finds what left the group
            TRAINRIG_DATASET_DIR=L.dataset,
            TRAINRIG_OUTPUT_DIR=L.outputs,
            TRAINRIG_LOGS_DIR=L.logs,
        )
        env.update({k: v for k, v in self.config.env})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), helpers) if p)
        return env

    def _train(self, venv_dir):
        L = self.layout
        with open(L.train_log, "ab") as log:
            return self._run_child(training_command(self.config, L, venv_dir), log, cwd=L.code,
                                   env=self._env(venv_dir), on_start=self._started)

    def _started(self, child):
        with self._lock:
            self.status.training_pid = child.pid
        self.save()
