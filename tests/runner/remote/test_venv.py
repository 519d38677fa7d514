"""The training's venv sees the packages of the interpreter it is made from, also when that
interpreter is itself a venv (the local target: trainrig installed in the user's venv beside torch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runner.remote import venv


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                         capture_output=True, text=True, check=True).stdout
    return Path(out.strip())


def test_a_venv_made_from_a_venv_sees_the_packages_installed_beside_trainrig(tmp_path: Path) -> None:
    base = tmp_path / "users-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base)], check=True)
    base_python = base / "bin" / "python"
    # A package installed beside trainrig only (like torch in the user's venv), nowhere else.
    (_site_packages(base_python) / "beside_trainrig_probe.py").write_text("VALUE = 42\n")

    folder, reused = venv.ensure(str(tmp_path / "cache"), "", str(tmp_path / "install.log"), python=str(base_python))

    assert not reused
    run = subprocess.run([f"{folder}/bin/python", "-c", "import beside_trainrig_probe as p; print(p.VALUE)"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "42"
    # Its own site-packages still come first: a requirement installed into it wins.
    order = subprocess.run([f"{folder}/bin/python", "-c", "import sys; print('\\n'.join(sys.path))"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert order.index(str(_site_packages(Path(folder) / "bin" / "python"))) < order.index(str(_site_packages(base_python)))


def test_the_cache_keeps_one_venv_per_base_interpreter(tmp_path: Path) -> None:
    assert venv.key("numpy\n", "/usr/bin/python3") != venv.key("numpy\n", "/home/me/venv/bin/python")
    assert venv.key("numpy\n", "/usr/bin/python3") == venv.key("numpy\n", "/usr/bin/python3")
