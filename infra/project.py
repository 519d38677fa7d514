"""Where trainrig's Pulumi project lives: the folder with its Pulumi.yaml (`main: infra/`,
`stackConfigDir: stacks`).

Installed from a source checkout (`pip install -e .`), that is the checkout itself. Installed as a
package (`pip install .`, a wheel), there is no checkout: trainrig then keeps a generated project
in its state folder, `<state>/pulumi-project/`, whose program is a link to the installed `infra`
package and whose `stacks/` holds the runs' stack configs, so `pulumi up -s RUN` works there too.
"""

from __future__ import annotations

import os
from pathlib import Path

GENERATED = "pulumi-project"
_INSTALLED_INFRA = Path(__file__).resolve().parent

# The same project as the checkout's Pulumi.yaml, with the program reached through a link.
_GENERATED_YAML = """\
# Written by trainrig (installed without its source checkout): its Pulumi project. Do not edit.
name: trainrig
runtime:
  name: python
  options:
    toolchain: pip
description: One Pulumi stack per training run (code name + dataset name).
main: program/
stackConfigDir: stacks
"""


def is_trainrig_project(folder: Path) -> bool:
    f = folder / "Pulumi.yaml"
    try:
        return f.is_file() and "name: trainrig" in f.read_text()
    except OSError:
        return False


def find_project(start: Path | None = None) -> Path | None:
    """The source checkout trainrig runs from, else one holding the current folder; None when
    trainrig was installed as a package and is run from elsewhere."""
    installed = _INSTALLED_INFRA.parent
    here = (start or Path.cwd()).resolve()
    return next((c for c in (installed, here, *here.parents) if is_trainrig_project(c)), None)


def generated_project(state: Path) -> Path:
    """The project folder trainrig keeps in its state folder when there is no checkout (made or
    repaired on each call: cheap, and an upgrade moves the installed package)."""
    root = state / GENERATED
    (root / "stacks").mkdir(parents=True, exist_ok=True)
    yaml = root / "Pulumi.yaml"
    if not yaml.is_file() or yaml.read_text() != _GENERATED_YAML:
        yaml.write_text(_GENERATED_YAML)
    link = root / "program"
    if not (link.is_symlink() and Path(os.readlink(link)) == _INSTALLED_INFRA):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(_INSTALLED_INFRA, target_is_directory=True)
    return root


def project_dir(state: Path) -> Path:
    """The Pulumi project for the trainrig home `state`: the checkout, else the generated one."""
    return find_project() or generated_project(state)


def stacks_dir(root: Path) -> Path:
    return root / "stacks"
