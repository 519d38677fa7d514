"""What a fault test watches to know where a run is (a user could look at the same places)."""

from __future__ import annotations

import os
from pathlib import Path


def tree_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` so far (finished or not; files may vanish meanwhile)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total
