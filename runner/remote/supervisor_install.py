"""The supervisor's install step: the requirements into a cached venv, then the install script."""

import os

from . import venv


class InstallStep:
    """Part of Supervisor (supervisor_loop.py): uses _run_child and _env (supervisor_training.py)."""

    def _install(self):
        L = self.layout
        req_path = os.path.join(L.code, "requirements.txt")
        requirements = ""
        if os.path.exists(req_path):
            with open(req_path) as f:
                requirements = f.read()
            self.status.requirements = requirements
        venv_dir, reused = venv.ensure(self.config.venv_cache, requirements, L.install_log, self._run_child,
                                     self.config.training_python)
        if self._stop_reason is not None:
            return venv_dir
        self.status.venv_reused = reused
        self.status.venv_dir = venv_dir
        self.status.frozen_requirements = venv.frozen(venv_dir)
        self.save()
        if self.config.install_script:
            with open(L.install_log, "ab") as log:
                rc = self._run_child(["bash", self.config.install_script], log, cwd=L.code, env=self._env(venv_dir))
            if rc != 0 and self._stop_reason is None:
                raise venv.InstallFailed(
                    "the install script %s failed (exit %d)" % (self.config.install_script, rc), venv._tail(L.install_log)
                )
        return venv_dir
