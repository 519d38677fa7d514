"""A refusal of the runner (runner/down_checks.py, runner/errors.py) with its ways out as buttons."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class WaysOut(ModalScreen[str | None]):
    """Dismissed with the id of the way out chosen, or None (cancel)."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, title: str, text: str, ways: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text, self.text, self.ways = title, text, ways

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text), classes="title")
            yield Label(Text(self.text))
            with Horizontal(classes="buttons"):
                for way, label in self.ways:
                    yield Button(label, id=way, variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
