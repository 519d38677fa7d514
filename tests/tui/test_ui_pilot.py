"""The terminal UI driven by Textual's pilot against the `local` target for real: a short training
through the embedded SSH server, started from the form, followed, downloaded and destroyed."""

from __future__ import annotations

import asyncio
import json

import pytest
from textual.widgets import Button, Input

from runner.states import Outcome, RunState
from tests.conftest import make_code, only_folder, record
from tests.tui.ui_helpers import app_on, click, log_text, until
from tui.screens.confirm_destroy import ConfirmDestroy
from tui.messages import OpenRun
from tui.screens.new_run import NewRunScreen
from tui.screens.run import RunScreen
from tui.screens.ways_out import WaysOut
from tui.widgets.metric_chart import MetricChart
from tui.widgets.runs_table import RunsTable

SHORT = """
import os, sys
from trainrig_helpers import log_metrics
for i in range(5):
    sys.stdout.write("\\rbar 1/2\\rbar 2/2\\n\\x1b[31mepoch %d\\x1b[0m\\n" % i)
    log_metrics(i, loss=1.0 / (i + 1))
open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "model.txt"), "w").write("weights")
print("done", flush=True)
"""
FAILS = """
print("about to fail", flush=True)
raise SystemExit(3)
"""
STEADY = """
import os, time
open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "model.txt"), "w").write("weights")
print("saved", flush=True)
while True:
    time.sleep(0.1)
"""


@pytest.fixture(autouse=True)
def _home(state_home, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRAINRIG_HOME", str(state_home))


async def _start_from_form(pilot, code, dataset_name: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("n")
    form = await until(pilot, "the form", lambda: isinstance(pilot.app.screen, NewRunScreen) and pilot.app.screen)
    form.query_one("#code", Input).value = str(code)
    form.query_one("#dataset_name", Input).value = dataset_name
    await click(pilot, "#start")
    await pilot.pause()


def test_start_from_the_form_follow_download_and_destroy(state_home, tmp_path):
    code = make_code(tmp_path / "uishort", SHORT)
    rid, out = "uishort-none", tmp_path / "out"

    async def scenario() -> None:
        app = app_on(state_home, out)
        async with app.run_test(size=(80, 24)) as pilot:
            await _start_from_form(pilot, code, "bad name!")
            form = pilot.app.screen
            assert isinstance(form, NewRunScreen)  # refused before anything started, the field says why
            assert form.query_one("#error-dataset_name").has_class("shown")
            assert not (state_home / "runs" / rid).exists()
            form.query_one("#dataset_name", Input).value = "none"
            await pilot.press("ctrl+s")  # the keyboard's way
            await until(pilot, "the run screen", lambda: isinstance(app.screen, RunScreen))
            await until(pilot, "the training's end", lambda: app.views.get(rid) and app.views[rid].outcome)
            view = app.views[rid]
            assert view.outcome == Outcome.SUCCEEDED and view.loss == pytest.approx(0.2)
            assert [p[0] for p in view.series["loss"]] == [0, 1, 2, 3, 4]
            chart = app.screen.query_one(MetricChart)
            await until(pilot, "the chart", lambda: len(chart.series.get("loss", ())) == 5)
            text = await until(pilot, "the log on screen", lambda: "done" in log_text(app) and log_text(app))
            assert "epoch 4" in text and "\x1b" not in text and "bar 1/2" not in text and "bar 2/2" in text
            assert (state_home / "runs" / rid / "ui" / "train.log").read_bytes().count(b"\x1b[31m") == 5

            await pilot.press("d")
            await until(pilot, "the download", lambda: app.views[rid].downloaded)
            assert (only_folder(out) / "outputs" / "model.txt").read_text() == "weights"
            await pilot.press("D")
            confirm = await until(pilot, "the confirmation", lambda: isinstance(app.screen, ConfirmDestroy) and app.screen)
            assert [b.id for b in confirm.query(Button)] == ["destroy", "cancel"]  # downloaded: nothing to offer
            await click(pilot, "#destroy")
            await until(pilot, "destroyed", lambda: app.views[rid].state == RunState.DESTROYED)
        assert record(state_home, rid)["state"] == "destroyed"

    asyncio.run(scenario())


def test_destroy_without_downloaded_outputs_offers_download_first_or_discard(state_home, tmp_path, trainrig):
    out = tmp_path / "out"
    for name in ("uikeep", "uidrop"):
        make_code(tmp_path / name, SHORT)
        assert trainrig("up", str(tmp_path / name)).code == 0
        assert trainrig("start", f"{name}-none").code == 0  # follows to the end

    async def destroy(pilot, rid: str, button: str) -> None:  # type: ignore[no-untyped-def]
        app = pilot.app
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index(rid))
        await pilot.press("D")
        confirm = await until(pilot, "the confirmation", lambda: isinstance(app.screen, ConfirmDestroy) and app.screen)
        assert {b.id for b in confirm.query(Button)} == {"download", "discard", "cancel"}
        await click(pilot, f"#{button}")
        await until(pilot, f"{rid} destroyed", lambda: app.views[rid].state == RunState.DESTROYED)

    async def scenario() -> None:
        app = app_on(state_home, out)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, "the runs", lambda: {"uikeep-none", "uidrop-none"} <= set(app.views))
            await destroy(pilot, "uikeep-none", "download")
            await destroy(pilot, "uidrop-none", "discard")
            # Its machine gone, a run still shows its log and metrics: from its download.
            table = app.screen.query_one(RunsTable)
            table.move_cursor(row=table.get_row_index("uikeep-none"))
            await pilot.press("enter")
            await until(pilot, "the downloaded log", lambda: "done" in log_text(app))
            assert app.views["uikeep-none"].loss == pytest.approx(0.2)

    asyncio.run(scenario())
    assert (only_folder(out) / "outputs" / "model.txt").read_text() == "weights"  # uikeep's, downloaded first
    assert only_folder(out).name.endswith("_uikeep_none")
    assert record(state_home, "uikeep-none")["final_download"] and not record(state_home, "uidrop-none")["downloads"]


def test_a_failing_training_shows_failed_with_its_exit_code(state_home, tmp_path):
    code = make_code(tmp_path / "uifails", FAILS)
    rid = "uifails-none"

    async def scenario() -> None:
        app = app_on(state_home, tmp_path / "out")
        async with app.run_test(size=(80, 24)) as pilot:
            await _start_from_form(pilot, code, "none")
            await until(pilot, "the failure", lambda: app.views.get(rid) and app.views[rid].outcome)
            view = app.views[rid]
            assert (view.outcome, view.exit_code, view.phase) == (Outcome.FAILED, 3, "failed")
            await until(pilot, "the log", lambda: "about to fail" in log_text(app))
            await pilot.press("escape")
            table = app.screen.query_one(RunsTable)
            await until(pilot, "the row", lambda: rid in table.rows and table.get_cell(rid, "phase").plain == "failed")
            assert str(table.get_cell(rid, "phase").style) == "red"

    try:
        asyncio.run(scenario())
    finally:
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "tui.cli", "down", rid, "--discard-outputs"], capture_output=True)


def test_quitting_leaves_the_training_running_and_reopening_picks_it_up(state_home, tmp_path, trainrig):
    make_code(tmp_path / "uisteady", STEADY)
    rid = "uisteady-none"
    assert trainrig("up", str(tmp_path / "uisteady")).code == 0
    try:
        assert trainrig("start", rid, "--no-follow").code == 0

        async def session(refuse_destroy: bool) -> None:
            app = app_on(state_home, tmp_path / "out")
            async with app.run_test(size=(80, 24)) as pilot:
                await until(pilot, "the run", lambda: rid in app.views)
                table = app.screen.query_one(RunsTable)
                table.move_cursor(row=table.get_row_index(rid))
                await pilot.press("enter")
                await until(pilot, "the log", lambda: isinstance(app.screen, RunScreen) and "saved" in log_text(app))
                assert app.views[rid].machine_phase == "training"
                if refuse_destroy:  # still training: the runner refuses, and the way out is a button
                    await pilot.press("D")
                    await until(pilot, "the confirmation", lambda: isinstance(app.screen, ConfirmDestroy))
                    await click(pilot, "#destroy")
                    ways = await until(pilot, "the refusal", lambda: isinstance(app.screen, WaysOut) and app.screen)
                    assert {b.id for b in ways.query(Button)} == {"stop", "cancel"}
                    await click(pilot, "#cancel")
                else:  # the ways out, taken: stop and destroy, then discard the outputs never downloaded
                    await pilot.press("D")
                    await until(pilot, "the confirmation", lambda: isinstance(app.screen, ConfirmDestroy))
                    await click(pilot, "#destroy")
                    await until(pilot, "the refusal", lambda: isinstance(app.screen, WaysOut))
                    await click(pilot, "#stop")
                    await until(pilot, "the outputs' refusal", lambda: isinstance(app.screen, WaysOut)
                                       and app.screen.query("#discard") and app.screen)
                    await click(pilot, "#discard")
                    await until(pilot, "destroyed", lambda: app.views[rid].state == RunState.DESTROYED)
                    assert app.views[rid].outcome == Outcome.STOPPED
                await pilot.press("escape")
                await pilot.press("q")

        asyncio.run(session(refuse_destroy=True))
        state = json.loads(trainrig("status", rid, "--json").out)
        assert state["run"]["state"] == "started" and state["status"]["outcome"] is None  # still training
        asyncio.run(session(refuse_destroy=False))  # opened again: the same run, its log from the start
        assert record(state_home, rid)["state"] == "destroyed"
    finally:
        assert trainrig("down", rid, "--stop", "--discard-outputs").code == 0


def test_the_form_offers_the_catalog_and_shows_each_refusal_under_its_field(state_home, tmp_path, monkeypatch):
    from textual.widgets import Select

    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))  # no gcloud default project either
    code = make_code(tmp_path / "uicloud", SHORT)

    def shown(form) -> list[str]:  # type: ignore[no-untyped-def]
        return [w.id for w in form.query(".error.shown")]

    async def scenario() -> None:
        app = app_on(state_home, tmp_path / "out")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n")
            form = await until(pilot, "the form", lambda: isinstance(app.screen, NewRunScreen) and app.screen)
            form.query_one("#code", Input).value = str(code)
            form.query_one("#target", Select).value = "gcp"
            accelerators = form.query_one("#accelerator", Select)
            await until(pilot, "the catalog's accelerators", lambda: len(accelerators._options) > 2)
            await pilot.press("ctrl+s")
            assert shown(form) == ["error-accelerator"]
            accelerators.value = "T4"
            await pilot.press("ctrl+s")
            assert shown(form) == ["error-project"] and isinstance(app.screen, NewRunScreen)
        assert not (state_home / "runs" / "uicloud-none").exists()  # nothing started

    asyncio.run(scenario())


def test_the_tensorboard_key_opens_a_tunnel_and_closes_it(state_home, tmp_path, trainrig):
    pytest.importorskip("tensorboard", reason="TensorBoard is not installed: the UI's tunnel was not tried")
    import urllib.request

    make_code(tmp_path / "uitb", SHORT)
    rid = "uitb-none"
    assert trainrig("up", str(tmp_path / "uitb")).code == 0
    try:
        assert trainrig("start", rid).code == 0

        async def scenario() -> None:
            app = app_on(state_home, tmp_path / "out")
            async with app.run_test(size=(80, 24)) as pilot:
                await until(pilot, "the run", lambda: rid in app.views)
                app.post_message(OpenRun(rid))
                await until(pilot, "the run screen", lambda: isinstance(app.screen, RunScreen))
                await pilot.press("t")
                url = await until(pilot, "the tunnel", lambda: app.tunnels.get(rid), timeout=120)
                page = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=30).status)
                assert page == 200
                await pilot.press("t")
                await until(pilot, "the tunnel closed", lambda: rid not in app.tunnels)

        asyncio.run(scenario())
    finally:
        assert trainrig("down", rid, "--discard-outputs").code == 0


def test_asking_for_the_backends_stacks_without_pulumi_is_a_notification(state_home, tmp_path, monkeypatch):
    import os
    import sys

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + ":/usr/bin:/bin")  # no Pulumi CLI

    async def scenario() -> None:
        app = app_on(state_home, tmp_path / "out")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("S")
            note = await until(pilot, "the refusal", lambda: [n for n in app._notifications if n.severity == "error"])
            assert note[0].title == "pulumi stacks" and "Pulumi" in note[0].message
            assert isinstance(app.screen.query_one(RunsTable), RunsTable) and app.stacks == {}  # still running

    asyncio.run(scenario())
