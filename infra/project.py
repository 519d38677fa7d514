"""Where trainrig's Pulumi project lives: the folder with its Pulumi.yaml (`main: infra/`,
`stackConfigDir: stacks`), i.e. the source checkout trainrig is installed from (`pip install -e`)."""

from __future__ import annotations

from pathlib import Path

from infra.errors import BadInput


def is_trainrig_project(folder: Path) -> bool:
    f = folder / "Pulumi.yaml"
    try:
        return f.is_file() and "name: trainrig" in f.read_text()
    except OSError:
        return False


def find_project(start: Path | None = None) -> Path | None:
    installed = Path(__file__).resolve().parent.parent
    here = (start or Path.cwd()).resolve()
    return next((c for c in (installed, here, *here.parents) if is_trainrig_project(c)), None)


def project_dir() -> Path:
    root = find_project()
    if root is None:
        raise BadInput(
            "trainrig's Pulumi project (Pulumi.yaml) was not found: the gcp and aws targets need trainrig installed "
            "from its source folder (`pip install -e '.[gcp]'` there)."
        )
    return root


def stacks_dir(root: Path) -> Path:
    return root / "stacks"
