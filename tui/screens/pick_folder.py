"""A folder picker for the new-run form: Textual's DirectoryTree showing folders only. Keyboard: the
arrows move, space opens a folder, backspace goes up one, Enter picks; mouse: a click opens, Pick picks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Label


def start_folder(text: str) -> Path:
    """Where the picker opens: the folder typed so far (or the nearest one above it), else here."""
    path = Path(text).expanduser() if text.strip() else Path.cwd()
    path = path if path.is_absolute() else Path.cwd() / path
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path.resolve()


class FolderTree(DirectoryTree):
    BINDINGS = [Binding("enter", "pick", "Pick", show=False), Binding("backspace", "up", "Up", show=False)]

    class Picked(Message):
        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if p.is_dir()]  # is_dir is False for what cannot be read, never raises

    def action_pick(self) -> None:
        node = self.cursor_node
        self.post_message(self.Picked(node.data.path if node is not None and node.data else Path(self.path)))

    def action_up(self) -> None:
        self.path = Path(self.path).parent


class PickFolder(ModalScreen[str | None]):
    """Dismissed with the folder picked (an absolute path), or None (cancel)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, start: Path) -> None:
        super().__init__()
        self.what, self.start = what, start

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(Text(f"Pick the {self.what}"), classes="title")
            yield Label("Enter picks the highlighted folder, space opens it, backspace goes up", classes="hint")
            yield FolderTree(self.start, id="tree")
            with Horizontal(classes="buttons"):
                yield Button("Pick", id="pick", variant="primary")
                yield Button("Up", id="up")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(FolderTree).focus()

    @on(FolderTree.Picked)
    def _picked(self, event: FolderTree.Picked) -> None:
        self.dismiss(str(event.path))

    @on(Button.Pressed, "#pick")
    def _pick(self) -> None:
        self.query_one(FolderTree).action_pick()

    @on(Button.Pressed, "#up")
    def _up(self) -> None:
        tree = self.query_one(FolderTree)
        tree.action_up()
        tree.focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
