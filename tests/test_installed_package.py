"""trainrig installed without `-e` (`pip install .`, as from a wheel): no source checkout beside the
package, yet every target works, the Pulumi project is found (generated in the state folder) and
`pulumi-env` points at it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_code

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (target / "Pulumi.yaml").exists()  # nothing of the checkout came along
    return target


def _trainrig(installed: Path, cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(installed), TRAINRIG_HOME=str(home), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def test_the_package_is_the_installed_copy(installed: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(installed))
    where = subprocess.run([sys.executable, "-c", "import infra, runner; print(infra.__file__); print(runner.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(installed) for p in where), where


def test_pulumi_env_points_at_a_generated_project_in_the_state_folder(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _trainrig(installed, tmp_path, home, "pulumi-env")
    assert done.returncode == 0, done.stderr
    project = home / "pulumi-project"
    assert f"cd {project}" in done.stdout.splitlines()
    assert "name: trainrig" in (project / "Pulumi.yaml").read_text()
    assert "stackConfigDir: stacks" in (project / "Pulumi.yaml").read_text()
    # The program Pulumi runs is the installed package's own.
    assert (project / "program" / "__main__.py").resolve() == (installed / "infra" / "__main__.py").resolve()
    assert (project / "stacks").is_dir()
    # The catalog (package data) came along too.
    listed = _trainrig(installed, tmp_path, home, "accelerators", "--cloud", "gcp")
    assert listed.returncode == 0 and "T4" in listed.stdout


def test_the_local_target_runs_from_the_installed_package(installed: Path, tmp_path: Path) -> None:
    code = make_code(tmp_path / "pkg", """
        import os
        print("trained", flush=True)
        open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "model.txt"), "w").write("weights")
    """)
    done = _trainrig(installed, tmp_path, tmp_path / "home", "run", str(code), "--dataset-name", "none",
                     "--outputs", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "trained\n"
    [folder] = (tmp_path / "out").iterdir()
    assert (folder / "outputs" / "model.txt").read_text() == "weights"


def test_the_terminal_ui_is_installed_with_its_screens_widgets_and_stylesheet(installed: Path) -> None:
    for part in ("tui/app.py", "tui/app.tcss", "tui/screens/run.py", "tui/widgets/runs_table.py"):
        assert (installed / part).is_file(), part
