"""The UI and the runs of several machines: a real 2-node local run's logs switched on the run screen
(rank 0, node 1, every node interleaved) through the runner's reading API, and a sweep's slots and
trials grouped on the runs screen (a snapshot from deterministic records)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from infra.spec import EntryPoint, RunSpec
from runner.journal import Journal, RunRecord
from runner.machine import Machine
from runner.nodes import ALL
from runner.run_view import RunView
from runner.states import Outcome, RunState
from tests.conftest import make_code
from tests.tui.picture import NOW, T0, views
from tests.tui.ui_helpers import app_on, until
from tui.app import TrainrigApp
from tui.messages import OpenRun
from tui.screens.run import RunScreen
from tui.widgets.paged_log import PagedLog
from tui.widgets.run_facts import facts
from tui.widgets.runs_table import RunsTable, cells, rows, sweep_of

RANKS = """
import os
print("rank=" + os.environ["TRAINRIG_NODE_RANK"], flush=True)
print("nodes=" + os.environ["TRAINRIG_NUM_NODES"], flush=True)
"""


@pytest.fixture(autouse=True)
def _home(state_home, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRAINRIG_HOME", str(state_home))


def _shown(app: TrainrigApp) -> list[str]:
    return list(app.screen.query_one("#log", PagedLog).lines)


def test_a_two_node_runs_log_is_switched_between_rank0_node1_and_all(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "uinodes", RANKS)
    rid = "uinodes-none"
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py").code == 0
    try:
        done = trainrig("start", rid)
        assert done.code == 0, done.err
        addresses = tuple(m.address for m in Journal(state_home).load(rid).all_nodes())

        async def scenario() -> None:
            app = app_on(state_home, tmp_path / "out")
            async with app.run_test(size=(100, 30)) as pilot:
                view = app.views[rid]
                assert view.node_count == 2 and view.nodes == addresses and len(set(addresses)) == 2
                assert cells(view, app.now())[2] == "2 nodes"  # the machine column
                app.post_message(OpenRun(rid))
                screen = await until(pilot, "the run screen", lambda: isinstance(app.screen, RunScreen) and app.screen)
                await until(pilot, "rank 0's log", lambda: _shown(app) == ["rank=0", "nodes=2"])
                assert [k for k, b in screen.active_bindings.items() if b.binding.action == "next_node"] == ["n"]
                assert all(a in facts(app.views[rid], app.now()).plain for a in addresses)  # each node's address

                await pilot.press("n")
                assert screen.node == 1
                await until(pilot, "node 1's log", lambda: _shown(app) == ["rank=1", "nodes=2"])
                await pilot.press("n")
                assert screen.node == ALL
                await until(pilot, "every node's log", lambda: sorted(_shown(app)) == [
                    "[0] nodes=2", "[0] rank=0", "[1] nodes=2", "[1] rank=1"])
                await pilot.press("n")
                assert screen.node == 0
                await until(pilot, "rank 0's log again", lambda: _shown(app) == ["rank=0", "nodes=2"])

                # The command palette offers each node's log and every node's.
                offered = {c.title: c.callback for c in app.get_system_commands(screen)}
                assert [node for _, node in screen.node_choices()] == [0, 1, ALL]
                offered[screen.node_choices()[1][0]]()
                assert screen.node == 1
                await until(pilot, "node 1's log from the palette", lambda: _shown(app) == ["rank=1", "nodes=2"])
                await pilot.press("escape")
                await until(pilot, "the followers' end", lambda: not [w for w in app.workers if not w.is_finished])

        asyncio.run(scenario())
    finally:
        assert trainrig("down", rid, "--discard-outputs").code == 0


def _member(code: str, dataset: str, state: str, **kw) -> RunRecord:  # type: ignore[no-untyped-def]
    spec = RunSpec(code_name=code, dataset_name=dataset, code_path=f"/work/{code}", entry=EntryPoint(module="train"),
                   nodes=kw.pop("spec_nodes", 1))
    machine = Machine("127.0.0.1", 40100 + len(dataset), "trainrig", ("ssh-ed25519 AAAA",), None, "python3",
                      ".trainrig", ".trainrig/venvs")
    rec = RunRecord(spec=spec, state=state, created_at=T0, machine=None if state == RunState.DESTROYED else machine, **kw)
    rec.phases = [["provisioning", T0], ["started", "2026-01-01T12:05:00.000Z"]]
    return rec


def sweep_views() -> list[RunView]:
    """The picture's runs, a 2-node run and sweep lenet-beer: two slots, three trials (t10 after t2)."""
    sweep = "lenet-beer"
    node = Machine("127.0.0.1", 40200, "trainrig", ("ssh-ed25519 AAAA",), None, "python3", ".trainrig", ".trainrig/venvs")
    records = [
        _member("gpt", "beer", RunState.STARTED, spec_nodes=2, nodes=[node, replace(node, port=40201)]),
        _member("lenet", "beer-t10", RunState.STARTED, sweep=sweep, borrowed_from="lenet-beer-s1"),
        _member("lenet", "beer-s2", RunState.UP, sweep=sweep),
        _member("lenet", "beer-t1", RunState.FINISHED, sweep=sweep, borrowed_from="lenet-beer-s1",
                outcome=Outcome.SUCCEEDED, exit_code=0),
        _member("lenet", "beer-s1", RunState.UP, sweep=sweep),
        _member("lenet", "beer-t2", RunState.FINISHED, sweep=sweep, borrowed_from="lenet-beer-s2",
                outcome=Outcome.STOPPED, reason="pruned at step 3"),
    ]
    return views() + [RunView.from_record(r, NOW) for r in records]


def test_sweep_rows_follow_their_sweep_in_trainrig_ls_order():
    keys = [k for k, _ in rows(sweep_views(), NOW)]
    assert keys == ["yolo-beer", "resnet-beer", "digits-beer", "bert-beer", "gpt-beer", "sweep:lenet-beer",
                    "lenet-beer-s1", "lenet-beer-s2", "lenet-beer-t1", "lenet-beer-t2", "lenet-beer-t10"]
    assert sweep_of(keys[5]) == "lenet-beer" and sweep_of(keys[6]) is None
    assert [k for k, _ in rows(sweep_views(), NOW, "lenet-beer")] == keys[5:]  # filtered by the sweep's name


def test_a_new_trial_lands_under_its_sweep_and_the_cursor_stays():
    first = [v for v in sweep_views() if v.run_id != "lenet-beer-t2"]

    async def scenario() -> None:
        app = TrainrigApp(views=first, now=NOW)
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.screen.query_one(RunsTable)
            table.move_cursor(row=list(table.rows).index("digits-beer"))
            app.views = {v.run_id: v for v in sweep_views()}
            app.screen.redraw()  # type: ignore[attr-defined]
            await pilot.pause()
            assert [str(k.value) for k in table.rows] == [k for k, _ in rows(sweep_views(), NOW)]
            assert table.selected_run == "digits-beer"
            table.move_cursor(row=list(table.rows).index("sweep:lenet-beer"))
            assert table.selected_run is None  # a sweep's own row is no run to act on
            await pilot.press("enter")  # ...it shows the sweep's runs alone
            await pilot.pause()
            assert [str(k.value) for k in table.rows][0] == "sweep:lenet-beer" and table.row_count == 6

    asyncio.run(scenario())


def test_runs_screen_with_a_sweep_and_a_two_node_run(snap_compare):
    assert snap_compare(TrainrigApp(views=sweep_views(), now=NOW), terminal_size=(80, 24))


def test_a_one_machine_runs_screen_has_no_node_key():
    async def scenario() -> None:
        app = TrainrigApp(views=sweep_views(), now=NOW)
        async with app.run_test(size=(80, 24)) as pilot:
            for rid, count in (("yolo-beer", 1), ("gpt-beer", 2)):
                app.post_message(OpenRun(rid))
                screen = await until(pilot, rid, lambda r=rid: isinstance(app.screen, RunScreen) and app.screen.run_id == r
                                     and app.screen)
                await pilot.pause()
                keys = [k for k, b in screen.active_bindings.items() if b.binding.action == "next_node"]
                assert (keys, len(screen.node_choices())) == (([], 0) if count == 1 else (["n"], 3))
                await pilot.press("escape")
                await until(pilot, "the runs screen", lambda: not isinstance(app.screen, RunScreen))

    asyncio.run(scenario())
