"""The new-run form's folder picker (tui/screens/pick_folder.py) at 80x24, with the keyboard and the
mouse: it lists folders only, Enter or Pick fills the field, Escape leaves it as it was, and a folder
picked that holds no training is refused in the form with nothing started."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input

from tests.conftest import make_code
from tests.tui.ui_helpers import app_on, click, until
from tui.screens.new_run import NewRunScreen
from tui.screens.pick_folder import FolderTree, PickFolder, start_folder


def test_the_picker_opens_at_the_nearest_folder_of_what_was_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    assert start_folder("") == tmp_path.resolve()
    assert start_folder("a/not/yet") == (tmp_path / "a").resolve()
    assert start_folder(str(tmp_path / "a")) == (tmp_path / "a").resolve()


async def _picker(pilot, button: str, folders: bool = True) -> FolderTree:  # type: ignore[no-untyped-def]
    pilot.app.screen.query_one(button).scroll_visible(animate=False)  # at 80x24 the form scrolls
    await pilot.pause()
    await click(pilot, button)
    await until(pilot, "the picker", lambda: isinstance(pilot.app.screen, PickFolder))
    tree = pilot.app.screen.query_one(FolderTree)
    await until(pilot, "the picker on screen", lambda: tree.region.height > 2 and (tree.root.children or not folders))
    return tree


def test_pick_a_folder_with_keys_and_mouse_and_start_nothing_invalid(state_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINRIG_HOME", str(state_home))
    work = tmp_path / "work"
    make_code(work / "alpha", "print('x')\n")
    (work / "beta").mkdir()  # no training script in it
    (work / "notes.txt").write_text("a file: never offered")

    runs = state_home / "runs"
    before = sorted(p.name for p in runs.iterdir()) if runs.exists() else []  # the session's other tests' runs

    async def scenario() -> None:
        app = app_on(state_home, tmp_path / "out")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n")
            form = await until(pilot, "the form", lambda: isinstance(app.screen, NewRunScreen) and app.screen)
            code = form.query_one("#code", Input)
            code.value = str(work)

            tree = await _picker(pilot, "#pick-code")  # the mouse opens it
            assert [n.data.path.name for n in tree.root.children] == ["alpha", "beta"]
            for _ in range(5):  # the keyboard moves to beta and picks it
                if tree.cursor_node is not None and tree.cursor_node.data.path.name == "beta":
                    break
                await pilot.press("down")
            await pilot.press("enter")
            await until(pilot, "the form again", lambda: app.screen is form)
            assert Path(code.value) == (work / "beta").resolve()

            await pilot.press("ctrl+s")  # beta holds no training: refused where the fix goes (a command)
            assert app.screen is form and [w.id for w in form.query(".error.shown")] == ["error-command"]

            dataset = form.query_one("#dataset", Input)
            dataset.value = str(work)
            tree = await _picker(pilot, "#pick-dataset")
            await pilot.click("#tree", offset=(20, 1))  # the mouse highlights alpha (the line under the root)
            await until(pilot, "alpha highlighted", lambda: tree.cursor_node.data.path.name == "alpha")
            await click(pilot, "#pick")
            await until(pilot, "the form again", lambda: app.screen is form)
            assert Path(dataset.value) == (work / "alpha").resolve()

            await _picker(pilot, "#pick-dataset", folders=False)  # alpha has no folders inside
            await pilot.press("escape")  # cancelled: the field keeps its folder
            await until(pilot, "the form again", lambda: app.screen is form)
            assert Path(dataset.value) == (work / "alpha").resolve()
        assert (sorted(p.name for p in runs.iterdir()) if runs.exists() else []) == before  # nothing started

    asyncio.run(scenario())
