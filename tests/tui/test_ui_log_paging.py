"""The run screen's log over the whole log on disk: a real training of 50,000 lines followed by the
UI through the embedded SSH server; scrolling to the top pages older lines in from the UI's mirror,
in order, none lost or repeated, with the widget bounded; End comes back to the live end."""

from __future__ import annotations

import asyncio

import pytest

from infra.spec import EntryPoint, RunSpec
from tests.conftest import make_code
from runner.events import LogChunk
from runner.journal import Journal, RunRecord
from tests.tui.ui_helpers import app_on, until
from tui.messages import RunEvent
from tui.messages import OpenRun
from tui.screens.run import LOG_LINES, LOG_WINDOW, RunScreen
from tui.widgets.paged_log import HELD, PagedLog

N = 50_000
# Colours and `\r` progress bars in the log, as trainings write them: each line shows as "line NNNNN".
FLOOD = f"""
import sys
sys.stdout.write("".join(("bar %d/9\\r" % (i % 9) if i % 7 == 0 else "") + "\\x1b[3%dmline %05d\\x1b[0m\\n" % (i % 8, i)
                         for i in range({N})))
"""


@pytest.fixture(autouse=True)
def _home(state_home, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRAINRIG_HOME", str(state_home))


def test_scrolling_to_the_top_pages_in_every_older_line_once_in_order(state_home, tmp_path, trainrig):
    make_code(tmp_path / "uipages", FLOOD)
    rid = "uipages-none"
    assert trainrig("up", str(tmp_path / "uipages")).code == 0
    try:
        assert trainrig("start", rid).code == 0
        expected = [f"line {i:05d}" for i in range(N)]

        async def scenario() -> None:
            app = app_on(state_home, tmp_path / "out")
            async with app.run_test(size=(80, 24)) as pilot:
                await until(pilot, "the run", lambda: rid in app.views)
                app.post_message(OpenRun(rid))
                await until(pilot, "the run screen", lambda: isinstance(app.screen, RunScreen))
                log = app.screen.query_one("#log", PagedLog)
                await until(pilot, "the whole log followed", lambda: log.shown == N, timeout=120)
                assert list(log.lines) == expected[-LOG_LINES:] and not log.paged
                mirror = app.log_lines(rid).mirror
                assert mirror is not None and mirror.stat().st_size == app.log_lines(rid).end

                # Reaching the top the way a wheel or the scrollbar does pages the previous part in.
                first = log.lines[0]
                log.scroll_to(y=0, animate=False, immediate=True)
                await until(pilot, "older lines paged in", lambda: log.lines[0] != first)
                assert log.paged and log.lines[log.scroll_y] == first  # the view stays on the line it showed
                assert log.border_subtitle == HELD
                seen = list(log.lines)
                while log.starts[0] > 0:  # `home` at the top: the previous part each time
                    first = log.lines[0]
                    await pilot.press("home")
                    await until(pilot, "the previous part", lambda: log.lines[0] != first)
                    assert len(log.lines) <= LOG_WINDOW and len(log.starts) == len(log.lines)
                    seen = list(log.lines[:log.lines.index(first)]) + seen
                assert seen == expected  # in order, none lost, none repeated
                assert len(app.log_lines(rid).lines) <= LOG_LINES

                # Scrolling down from the top pages the newer part back in, dropping the oldest.
                last = log.lines[-1]
                log.scroll_end(animate=False, immediate=True)
                await until(pilot, "newer lines paged in", lambda: log.lines[-1] != last)
                assert log.lines[log.lines.index(last) + 1] == expected[expected.index(last) + 1]
                assert len(log.lines) <= LOG_WINDOW

                await pilot.press("end")
                await until(pilot, "live again", lambda: not log.paged)
                assert list(log.lines) == expected[-LOG_LINES:] and not log.border_subtitle

        asyncio.run(scenario())
    finally:
        assert trainrig("down", rid, "--discard-outputs").code == 0


def test_a_reader_scrolled_up_is_not_pushed_by_new_lines_and_scrolling_down_catches_up(state_home, tmp_path):
    """Lines handed over the follower's way (RunEvent) while someone reads older ones: the widget holds
    still; scrolling to its bottom pages the rest in from disk and follows live again."""
    spec = RunSpec(code_name="uihold", dataset_name="none", code_path=str(tmp_path), entry=EntryPoint(module="train"))
    Journal(state_home).save(RunRecord(spec=spec, state="up"))  # no follower: the test hands the lines over
    rid = spec.run_id
    data = b"".join(b"row %05d\n" % i for i in range(LOG_LINES + 3000))

    async def scenario() -> None:
        app = app_on(state_home, tmp_path / "out")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, "the run", lambda: rid in app.views)
            app.post_message(RunEvent(rid, LogChunk(0, data[:len(data) // 2])))
            app.post_message(OpenRun(rid))
            await until(pilot, "the run screen", lambda: isinstance(app.screen, RunScreen))
            log = app.screen.query_one("#log", PagedLog)
            await until(pilot, "the first half", lambda: log.shown == app.log_lines(rid).total > 0)
            app.post_message(RunEvent(rid, LogChunk(len(data) // 2, data[len(data) // 2:len(data) * 3 // 4])))
            await until(pilot, "a full widget", lambda: len(log.lines) == LOG_LINES)
            await pilot.resize_terminal(80, 18)  # a smaller terminal is no reader: the log keeps following
            app.post_message(RunEvent(rid, LogChunk(len(data) * 3 // 4, data[len(data) * 3 // 4:len(data) * 7 // 8])))
            await until(pilot, "lines after the resize", lambda: log.shown == app.log_lines(rid).total
                        and log.end == len(data) * 7 // 8 - len(data) * 7 // 8 % 10)
            assert not log.paged and log.is_vertical_scroll_end
            log.scroll_to(y=log.max_scroll_y - 30, animate=False, immediate=True)
            held = list(log.lines)
            app.post_message(RunEvent(rid, LogChunk(len(data) * 7 // 8, data[len(data) * 7 // 8:])))
            await until(pilot, "every line handed over", lambda: app.log_lines(rid).end == len(data))
            await until(pilot, "the widget holding", lambda: log.paged)
            await pilot.pause(0.3)  # a few of the screen's flushes
            assert list(log.lines) == held and log.border_subtitle == HELD
            log.scroll_end(animate=False, immediate=True)
            await until(pilot, "live again", lambda: not log.paged)
            assert list(log.lines) == [f"row {i:05d}" for i in range(3000, LOG_LINES + 3000)]
            assert log.is_vertical_scroll_end
            app.post_message(RunEvent(rid, LogChunk(len(data), b"one more\n")))  # followed live again
            await until(pilot, "the next line", lambda: log.lines[-1] == "one more")
            assert log.is_vertical_scroll_end and not log.paged

    asyncio.run(scenario())


def test_pages_before_and_after_any_line_match_the_lines_fed_live(tmp_path, monkeypatch):
    """The pages read from disk and the live lines agree on every line's text and start (small blocks:
    lines cut across reads), also for a flood bigger than what is kept and a blank line."""
    import random

    from tui import log_pages
    from tui.log_lines import LogLines

    monkeypatch.setattr(log_pages, "BLOCK", 7)
    rnd = random.Random(7)
    raw = [b"" if i == 5 else b"\x1b[1mrow %d\x1b[0m" % i + b"x" * rnd.randint(0, 20) for i in range(300)]
    data = b"".join(r + b"\n" for r in raw)
    live = LogLines(keep=40, mirror=tmp_path / "train.log")
    for at in range(0, len(data), 97):
        live.feed(at, data[at:at + 97])
    starts = [sum(len(r) + 1 for r in raw[:i]) for i in range(len(raw))]
    texts = [r.replace(b"\x1b[1m", b"").replace(b"\x1b[0m", b"").decode() for r in raw]
    assert list(live.lines) == texts[-40:] and list(live.starts) == starts[-40:] and live.line_end == len(data)
    for _ in range(300):
        i, n = rnd.randint(0, len(raw)), rnd.randint(1, 30)
        got = log_pages.read_before(live.mirror, starts[i] if i < len(raw) else len(data), n)
        assert got == (texts[max(0, i - n):i], starts[max(0, i - n):i])
        j = rnd.randint(0, len(raw) - 1)
        t, s, end = log_pages.read_after(live.mirror, starts[j], n, live.line_end)
        assert (t, s) == (texts[j:j + n], starts[j:j + n]) and end == (starts + [len(data)])[min(len(raw), j + n)]
