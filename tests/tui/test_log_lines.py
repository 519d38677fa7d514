"""A training's log bytes become lines a terminal widget can show."""

from __future__ import annotations

from tui.log_lines import LogLines
from tui.widgets.metric_chart import plot


def test_progress_bars_collapse_and_escape_codes_go():
    lines = LogLines()
    lines.feed(0, b"\x1b[1;32mgreen\x1b[0m\tok\n 10%|#  |\r 50%|## |\r100%|###|\nbell\x07\n")
    assert list(lines.lines) == ["green   ok", "100%|###|", "bell"]
    lines.feed(lines.end, b"epoch 3 \r 1/9")
    assert lines.pending == " 1/9" and lines.total == 3  # the bar being redrawn, not a line yet


def test_a_follower_resuming_earlier_shows_each_byte_once_and_lines_are_bounded(tmp_path):
    mirror = tmp_path / "train.log"
    lines = LogLines(keep=3, mirror=mirror)
    data = b"".join(b"line %d\n" % i for i in range(10))
    lines.feed(0, data[:25])
    lines.feed(0, data)  # a reconnect that starts again from 0
    assert lines.total == 10 and list(lines.lines) == ["line 7", "line 8", "line 9"]
    assert lines.since(8) == ["line 8", "line 9"] and lines.since(0) == ["line 7", "line 8", "line 9"]
    assert mirror.read_bytes() == data  # the whole log, byte for byte


def test_a_line_without_newline_is_bounded():
    lines = LogLines()
    lines.feed(0, b"x" * (1 << 20))
    assert len(lines.pending) <= 2000


def test_the_chart_draws_a_falling_curve_from_top_left_to_bottom_right():
    rows = plot(tuple((i, 1.0 / (i + 1)) for i in range(50)), width=10, height=3)
    assert len(rows) == 3 and all(len(r) == 10 for r in rows)
    assert rows[0][0] != "\u2800" and rows[-1][-1] != "\u2800" and rows[0][-1] == "\u2800"
    assert plot((), 5, 2) == ["\u2800" * 5] * 2
