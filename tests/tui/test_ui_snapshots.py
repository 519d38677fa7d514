"""The main screens drawn from deterministic RunViews at 80x24 (pytest-textual-snapshot; Textual is
pinned in pyproject.toml, so a drawing changes only when the UI does). Update with --snapshot-update."""

from __future__ import annotations

from tests.tui.picture import app

SIZE = (80, 24)


def test_runs_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE)


def test_run_screen_of_a_training_cloud_run(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, press=["enter"])


def test_destroy_asks_with_what_goes_and_the_cost(snap_compare):
    async def ask(pilot):  # type: ignore[no-untyped-def]
        from tui.screens.confirm_destroy import ConfirmDestroy

        await pilot.app.push_screen(ConfirmDestroy(pilot.app.views["resnet-beer"]))

    assert snap_compare(app(), terminal_size=SIZE, run_before=ask)


def test_help_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, press=["question_mark"])


def test_new_run_form_with_its_folder_pickers(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, press=["n"])
