"""Where trainrig keeps what it knows of runs: `.trainrig/` in its workspace.

The workspace is the folder holding trainrig's Pulumi.yaml (the repository root), so every command
and the UI see all runs wherever they are started from. TRAINRIG_HOME names the state folder instead.
"""

import os
from pathlib import Path

from infra.project import find_project

STATE_DIR = ".trainrig"


def state_dir() -> Path:
    env = os.environ.get("TRAINRIG_HOME")
    if env:
        path = Path(env).expanduser().resolve()
    else:
        root = find_project()
        path = (root / STATE_DIR) if root else Path.home() / ".local" / "share" / "trainrig"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# trainrig's run journal and keys: never commit\n*\n")
    return path
