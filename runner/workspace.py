"""Where trainrig keeps what it knows of runs: `.trainrig/` in its workspace.

The workspace is the folder holding trainrig's Pulumi.yaml (the repository root), so every command
and the UI see all runs wherever they are started from. TRAINRIG_HOME names the state folder instead.
"""

import os
from pathlib import Path

STATE_DIR = ".trainrig"


def _is_trainrig_project(folder: Path) -> bool:
    f = folder / "Pulumi.yaml"
    try:
        return f.is_file() and "name: trainrig" in f.read_text()
    except OSError:
        return False


def state_dir() -> Path:
    env = os.environ.get("TRAINRIG_HOME")
    if env:
        path = Path(env).expanduser().resolve()
    else:
        installed = Path(__file__).resolve().parent.parent
        candidates = [installed, *[p for p in [Path.cwd(), *Path.cwd().parents]]]
        root = next((c for c in candidates if _is_trainrig_project(c)), None)
        path = (root / STATE_DIR) if root else Path.home() / ".local" / "share" / "trainrig"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# trainrig's run journal and keys: never commit\n*\n")
    return path
