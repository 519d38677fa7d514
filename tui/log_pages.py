"""Pages of a log kept whole on disk (the UI's mirror of the machine's logs/train.log): the lines just
before or just after a byte offset, cleaned as the live ones are, each with where it begins, so a
bounded widget can scroll through a log of any length."""

from __future__ import annotations

from pathlib import Path

from tui.log_lines import clean

BLOCK = 1 << 18  # bytes read at a time


def read_before(path: Path, offset: int, n: int) -> tuple[list[str], list[int]]:
    """The up to `n` complete lines that end just before `offset` (a line start), oldest first."""
    if n <= 0 or offset <= 0:
        return [], []
    with open(path, "rb") as f:
        buf, at = b"", offset
        # n lines need n+1 newlines before `offset` (the one that ends the line before them), or the file's start.
        while at > 0 and buf.count(b"\n", 0, max(0, len(buf) - 1)) < n:
            step = min(BLOCK, at)
            at -= step
            f.seek(at)
            buf = f.read(step) + buf
    body = buf[:-1] if buf.endswith(b"\n") else buf  # the newline that ends the last line before `offset`
    raws = body.split(b"\n")[-n:]  # when not at the file's start, the first piece was an older line's tail
    starts, pos = [], offset
    for raw in reversed(raws):
        pos -= len(raw) + 1
        starts.append(pos)
    starts.reverse()
    return [clean(r) for r in raws], starts


def read_after(path: Path, offset: int, n: int, limit: int) -> tuple[list[str], list[int], int]:
    """The up to `n` complete lines from `offset` (a line start) on, none past `limit` (the end of the
    last complete line); and the offset just after the last one returned."""
    texts: list[str] = []
    starts: list[int] = []
    with open(path, "rb") as f:
        f.seek(offset)
        pos, rest = offset, b""
        while len(texts) < n and pos + len(rest) < limit:
            chunk = f.read(min(BLOCK, limit - pos - len(rest)))
            if not chunk:
                break
            pieces = (rest + chunk).split(b"\n")
            rest = pieces.pop()
            for raw in pieces:
                if len(texts) == n:
                    return texts, starts, pos
                texts.append(clean(raw))
                starts.append(pos)
                pos += len(raw) + 1
    return texts, starts, pos
