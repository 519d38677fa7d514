"""The run's log in a bounded widget over the whole log on disk.

Live, it shows the last `live_lines` lines and follows the end. Scrolling to the top (or up/home/
page up there) pages in the `page` lines before the first one shown, read from the UI's mirror of
the log; the widget then stops following and holds at most `window` lines, dropping the newest
(they are on disk). Scrolling down past the last line shown pages the next ones in, dropping the
oldest, and reaching the end of the log (or pressing End) follows it live again."""

from __future__ import annotations

from collections import deque

from textual.widgets import Log

from tui.log_lines import LogLines
from tui.log_pages import read_after, read_before

HELD = "not following · end: live"  # shown while the widget holds older lines


class PagedLog(Log):
    def __init__(self, source: LogLines, live_lines: int, page: int, window: int, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(max_lines=live_lines, auto_scroll=True, **kw)
        self.source = source
        self.live_lines, self.page, self.window = live_lines, page, window
        self.starts: deque[int] = deque(maxlen=live_lines)  # where each line shown begins in the log
        self.end = 0  # offset just after the last line shown
        self.shown = 0  # the source's lines taken so far (live)
        self.paged = False
        self._moving = False  # our own scrolls page nothing in
        self._reading = False  # live, someone scrolled up from the end (a resize is not reading)

    # -- live ------------------------------------------------------------------------------------------
    def pull(self) -> None:
        """Show the lines the source got since the last pull (live only)."""
        if self.paged:
            return
        if self.source.total > self.shown and len(self.lines) >= self.live_lines and self._reading:
            self._hold()  # someone reads older lines: new ones would push them away under their eyes
            return
        texts, starts = self.source.since_at(self.shown)
        self.shown = self.source.total
        if texts:
            self.write_lines([t or " " for t in texts], scroll_end=False)  # Log drops "": a blank line is a line
            self.starts.extend(starts)
            self.end = self.source.line_end
            if not self._reading:
                self._moving = True
                try:
                    self.scroll_end(animate=False, immediate=True, x_axis=False)
                finally:
                    self._moving = False

    def live(self) -> None:
        """Back to the end of the log, following it."""
        self.shown = self.source.total
        self._show(list(self.source.lines), list(self.source.starts), self.source.line_end, paged=False, y=None)

    # -- paging ----------------------------------------------------------------------------------------
    def older(self) -> bool:
        """Page in the lines before the first one shown; False when there are none."""
        path = self.source.mirror
        if path is None or not self.starts or self.starts[0] <= 0:
            return False
        texts, starts = read_before(path, self.starts[0], self.page)
        if not texts:
            return False
        lines, at, end = [t or " " for t in texts] + list(self.lines), starts + list(self.starts), self.end
        if len(lines) > self.window:  # far from the bottom now: the newest go (they are on disk)
            end = at[self.window]
            lines, at = lines[:self.window], at[:self.window]
        self._show(lines, at, end, paged=True, y=self.scroll_y + len(texts))
        return True

    def newer(self) -> bool:
        """Page in the lines after the last one shown; at the end of the log, follow it live again."""
        path = self.source.mirror
        if not self.paged or path is None:
            return False
        texts, starts, end = read_after(path, self.end, self.page, self.source.line_end)
        if end >= self.source.line_end:
            self.live()
            return True
        lines, at = list(self.lines) + [t or " " for t in texts], list(self.starts) + starts
        drop = max(0, len(lines) - self.window)
        self._show(lines[drop:], at[drop:], end, paged=True, y=self.scroll_y - drop)
        return bool(texts)

    def _hold(self) -> None:
        self.paged = True
        self.border_subtitle = HELD
        self.max_lines = self.window
        self.starts = deque(self.starts, maxlen=self.window)

    def _show(self, lines: list[str], starts: list[int], end: int, paged: bool, y: float | None) -> None:
        self._moving = True
        try:
            self.paged = paged
            self.border_subtitle = HELD if paged else ""
            cap = self.window if paged else self.live_lines
            self.max_lines = cap
            self.clear()
            self.write_lines(lines[-cap:], scroll_end=not paged)
            self.starts = deque(starts[-cap:], maxlen=cap)
            self.end = end
            self._reading = False
            if y is None:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
            else:
                self.scroll_to(y=max(0, y), animate=False, immediate=True)
        finally:
            self._moving = False

    # -- what pages in: reaching either end, or a key pressed there -------------------------------------
    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._moving:
            return
        self._reading = not self.paged and new_value < self.max_scroll_y
        if new_value <= 0 < old_value:
            self.call_later(self.older)
        elif self.paged and new_value > old_value and new_value >= self.max_scroll_y:
            self.call_later(self.newer)

    def action_scroll_home(self) -> None:
        if self.scroll_y > 0:
            self.scroll_home(animate=False)
        else:
            self.older()

    def action_scroll_up(self) -> None:
        if self.scroll_y > 0:
            super().action_scroll_up()
        else:
            self.older()

    def action_page_up(self) -> None:
        if self.scroll_y > 0:
            super().action_page_up()
        else:
            self.older()

    def action_scroll_end(self) -> None:
        if self.paged:
            self.live()
        else:
            super().action_scroll_end()

    def action_scroll_down(self) -> None:
        if self.paged and self.scroll_y >= self.max_scroll_y:
            self.newer()
        else:
            super().action_scroll_down()

    def action_page_down(self) -> None:
        if self.paged and self.scroll_y >= self.max_scroll_y:
            self.newer()
        else:
            super().action_page_down()
