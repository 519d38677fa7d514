"""Durations as users write them: 90, 90s, 30m, 2h, 1h30m, 1d."""

import re

from infra.errors import BadInput

_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str, what: str) -> int:
    """Seconds in `text`; a bad spelling raises BadInput naming `what`."""
    s = text.strip().lower()
    if s.isdigit():
        seconds = int(s)
    else:
        pos, seconds = 0, 0
        for m in _PART.finditer(s):
            if m.start() != pos:
                break
            seconds += int(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(s) or not s:
            raise BadInput(
                f"the {what} {text!r} is not a duration: write it like 90s, 30m, 2h or 1h30m."
            )
    if seconds <= 0:
        raise BadInput(f"the {what} must be longer than zero seconds (e.g. 30m).")
    return seconds


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def exact_duration(seconds: int) -> str:
    """The largest whole unit that loses nothing: 12h, 90m, 45s (parse_duration reads it back)."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
