"""A training log's bytes as lines a terminal widget can show: `\\r` progress bars collapsed to
their last state, ANSI escape codes and other control bytes removed, at most `keep` lines in
memory (the whole log stays on disk: the machine's logs/train.log, and a local mirror).

Textual's `Log` would split on `\\r` (tqdm floods it) and print escape codes as garbage."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")  # line breaks to str.splitlines too
MAX_LINE = 2000  # characters shown of one line (a megabyte without a newline must not freeze a redraw)


def clean(raw: bytes) -> str:
    """One line as shown: the text after its last carriage return, without escape codes."""
    raw = raw.rstrip(b"\r")
    raw = raw[raw.rfind(b"\r") + 1:]
    text = ANSI.sub(b"", raw).decode("utf-8", "replace").expandtabs(4)
    return CONTROL.sub("", text)[:MAX_LINE]


class LogLines:
    """Fed with LogChunks (offset, bytes) in order; each byte is counted once even when a follower
    resumes from an earlier offset."""

    def __init__(self, keep: int = 5000, mirror: Path | None = None):
        self.lines: deque[str] = deque(maxlen=keep)
        self.starts: deque[int] = deque(maxlen=keep)  # where each kept line begins in the log (paging reads from there)
        self.total = 0  # complete lines ever seen (the screen remembers how many it has shown)
        self.end = 0  # offset of the first byte not yet seen
        self.line_end = 0  # offset just after the last complete line
        self._partial = b""
        self._mirror = mirror

    @property
    def mirror(self) -> Path | None:
        """The whole log on this computer (None: not kept, or the disk refused it)."""
        return self._mirror

    @property
    def pending(self) -> str:
        """The line being written now (a progress bar redrawn with `\\r`), '' when none."""
        return clean(self._partial) if self._partial else ""

    def feed(self, offset: int, data: bytes) -> None:
        if offset + len(data) <= self.end:
            return
        if offset < self.end:
            data, offset = data[self.end - offset:], self.end
        if self._mirror is not None:
            self._write_mirror(offset, data)
        self.end = offset + len(data)
        first_start = self.line_end
        last_newline = data.rfind(b"\n")
        parts = (self._partial + data).split(b"\n")
        self._partial = parts.pop()
        self._partial = self._partial[-(1 << 16):] if len(self._partial) > 1 << 16 else self._partial
        if not parts:
            return
        self.line_end = offset + last_newline + 1
        # A flood brings more lines than are kept: only the last `keep` are cleaned (the rest are on disk).
        kept = parts[-(self.lines.maxlen or len(parts)):]
        starts, at = [], self.line_end
        for raw in reversed(kept):  # from the end: the first part's start is wrong if the partial was cut
            at -= len(raw) + 1
            starts.append(at)
        starts.reverse()
        if len(kept) == len(parts):
            starts[0] = first_start
        self.starts.extend(starts)
        self.lines.extend(clean(raw) for raw in kept)
        self.total += len(parts)

    def since(self, shown: int) -> list[str]:
        """The complete lines after the first `shown` ones (as many as are still kept)."""
        new = self.total - shown
        if new <= 0:
            return []
        new = min(new, len(self.lines))
        return list(self.lines)[-new:]

    def since_at(self, shown: int) -> tuple[list[str], list[int]]:
        """`since(shown)` and where each of those lines begins in the log."""
        got = self.since(shown)
        return got, list(self.starts)[len(self.starts) - len(got):]

    def _write_mirror(self, offset: int, data: bytes) -> None:
        try:
            assert self._mirror is not None
            self._mirror.parent.mkdir(parents=True, exist_ok=True)
            with open(self._mirror, "r+b" if self._mirror.exists() else "wb") as f:
                f.seek(offset)
                f.write(data)
        except OSError:
            self._mirror = None  # a full disk here must not stop the screen; the machine keeps the log
