"""Destroy asks first: what goes, what it cost, and whether the outputs were ever downloaded."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from runner.run_view import RunView

DESTROY, DOWNLOAD_FIRST, DISCARD = "destroy", "download", "discard"


def what_goes(view: RunView) -> list[str]:
    lines = [f"run {view.run_id} ({view.target}), phase {view.phase}"]
    if view.machine:
        lines.append(f"its machine {view.accelerator + ' ' if view.accelerator else ''}{view.machine} and "
                     "everything on it" + (" (the cloud stack: VM, firewall, bucket, identity)" if view.hourly_usd else ""))
    if view.cost_usd is not None:
        lines.append(f"cost so far: at most ${view.cost_usd:.2f} (${view.hourly_usd or 0:.2f}/hour)")
    if view.outcome and not view.downloaded:
        lines.append("its outputs were NEVER downloaded: destroying deletes them")
    return lines


class ConfirmDestroy(ModalScreen[str | None]):
    """Dismissed with DESTROY, DOWNLOAD_FIRST, DISCARD, or None (cancel)."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, view: RunView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Destroy run {self.view.run_id}?", classes="title")
            for line in what_goes(self.view):
                yield Label(Text("• " + line))
            with Horizontal(classes="buttons"):
                if self.view.outcome and not self.view.downloaded:
                    yield Button("Download first", id=DOWNLOAD_FIRST, variant="primary")
                    yield Button("Discard outputs", id=DISCARD, variant="error")
                else:
                    yield Button("Destroy", id=DESTROY, variant="error")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()  # Enter alone never destroys

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
