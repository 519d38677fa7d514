"""Virtual environments for a run's requirements, cached on the machine by the requirements' hash.

`--system-site-packages` lets a machine image's preinstalled torch/TensorFlow be reused instead of
downloaded again.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys


class InstallFailed(Exception):
    def __init__(self, message, tail):
        super().__init__(message)
        self.tail = tail


def _tail(path, n=15):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return [l for l in lines if l.strip()][-n:]


def key(requirements, python=None):
    h = hashlib.sha256()
    h.update(("%s\0%s\0" % (python or sys.executable, sys.version)).encode())
    h.update(requirements.encode())
    return h.hexdigest()[:16]


# Asked of the base interpreter: is it itself a venv, and where are its packages?
_SITE_QUERY = "import json, site, sys; print(json.dumps([sys.prefix != sys.base_prefix, site.getsitepackages()]))"


def _inherit_site_packages(base_python, venv_dir):
    """A venv made from inside another venv sees the *base* interpreter's packages only, not those
    installed beside trainrig (torch, tensorboard in the user's venv). A .pth file in the new venv
    adds the creating venv's site-packages after its own, so they are seen as `--system-site-packages`
    promises."""
    try:
        out = subprocess.run([base_python, "-c", _SITE_QUERY], capture_output=True, text=True, timeout=60).stdout
        is_venv, dirs = json.loads(out)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return
    if not is_venv:
        return
    py = os.path.join(venv_dir, "bin", "python")
    own = json.loads(subprocess.run([py, "-c", _SITE_QUERY], capture_output=True, text=True, timeout=60).stdout)[1]
    with open(os.path.join(own[0], "trainrig-base-venv.pth"), "w") as f:
        f.write("".join(d + "\n" for d in dirs if os.path.isdir(d)))


def _call(argv, log):
    return subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT)


def ensure(cache, requirements, log_path, call=_call, python=None):
    """(venv folder, reused?) for `requirements` (text, possibly empty); pip output goes to `log_path`.

    `call(argv, log) -> exit code` runs each step (the supervisor passes one it can interrupt);
    `python` is the interpreter the venv is made from and whose packages it sees (default: this one).
    """
    python = python or sys.executable
    final = os.path.join(cache, key(requirements, python))
    ready = os.path.join(final, ".trainrig-ready")
    if os.path.exists(ready):
        return final, True
    os.makedirs(cache, exist_ok=True)
    # Built in place (scripts in bin/ hold the venv's absolute path, so it cannot be renamed), under
    # a lock so that two runs needing the same venv build it once; a half-built one is rebuilt.
    with open(final + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(ready):
            return final, True
        shutil.rmtree(final, ignore_errors=True)
        try:
            _build(final, requirements, log_path, call, python)
        except InstallFailed:
            shutil.rmtree(final, ignore_errors=True)
            raise
        open(ready, "w").close()
    return final, False


def _build(venv, requirements, log_path, call, python):
    with open(log_path, "ab") as log:
        # Without requirements there is nothing for pip to do: skip bootstrapping it (seconds saved).
        flags = ["--system-site-packages"] + ([] if requirements.strip() else ["--without-pip"])
        rc = call([python, "-m", "venv"] + flags + [venv], log)
        if rc != 0:
            raise InstallFailed(
                "could not create a virtual environment (exit %d; on Debian/Ubuntu install python3-venv)" % rc,
                _tail(log_path),
            )
        _inherit_site_packages(python, venv)
        py = os.path.join(venv, "bin", "python")
        if requirements.strip():
            req = os.path.join(venv, "requirements.txt")
            with open(req, "w") as f:
                f.write(requirements)
            log.flush()
            rc = call([py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-r", req], log)
            if rc != 0:
                raise InstallFailed("pip could not install requirements.txt (exit %d)" % rc, _tail(log_path))
        frozen = ""
        if requirements.strip():
            frozen = subprocess.run(
                [py, "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True, text=True
            ).stdout
        with open(os.path.join(venv, "frozen.txt"), "w") as f:
            f.write(frozen)


def frozen(venv):
    try:
        with open(os.path.join(venv, "frozen.txt")) as f:
            return f.read()
    except OSError:
        return None
