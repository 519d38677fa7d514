"""An exclusive lock on a file, refused at once rather than queued: two trainrig commands on the same
thing never wait on each other silently; the second is told who holds it."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.errors import BadInput


@contextmanager
def exclusive(path: Path, refusal: str) -> Iterator[None]:
    """Hold `path` locked (made with its folder, 0700); `refusal` (one sentence with the way out)
    is the BadInput raised while another process holds it. The lock goes with the file's closing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInput(refusal) from None
        yield
