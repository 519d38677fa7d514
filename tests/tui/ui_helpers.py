"""Helpers of the UI's pilot tests: an app on the test's state folder, and waiting for what the
app shows (a condition polled between the app's own frames, never a fixed sleep)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from runner.journal import Journal
from tui.app import TrainrigApp


def app_on(state_home: Path, outputs: Path) -> TrainrigApp:
    return TrainrigApp(journal=Journal(state_home), outputs_root=outputs)


async def until(pilot, what: str, cond: Callable[[], object], timeout: float = 90.0):  # type: ignore[no-untyped-def]
    """Let the app run until `cond()` is true; fail naming `what` (and the app's notifications)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        await pilot.pause(0.1)
    notes = [n.message for n in pilot.app._notifications]
    raise AssertionError(f"timed out waiting for {what}; notifications: {notes}")


def log_text(app: TrainrigApp) -> str:
    from textual.widgets import Log

    return "\n".join(app.screen.query_one("#log", Log).lines)


async def click(pilot, selector: str) -> None:  # type: ignore[no-untyped-def]
    """Click `selector` on the current screen once it is laid out (a modal just pushed may not be yet)."""

    def ready() -> bool:
        found = pilot.app.screen.query(selector)
        return bool(found) and found.first().region.area > 0

    await until(pilot, f"{selector} on screen", ready)
    await pilot.click(selector)
