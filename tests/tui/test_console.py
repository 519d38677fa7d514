"""The console printer folds the runner's events into a RunView, as the UI does, and decides from it:
what the person's Ctrl-C means (`following`), how far the log went, the latest transfer progress."""

from __future__ import annotations

from runner.events import LogChunk, Notice, PhaseChanged, Progress, StatusChanged
from runner.remote.status import Status
from runner.run_view import RunView, fold
from runner.states import ClientPhase, MachinePhase
from tui.console import Console

TRAINING = Status("digits-none", phase="training", phases=[["preparing", "2026-01-01T10:00:06.000Z"],
                                                          ["training", "2026-01-01T10:00:09.000Z"]])
EVENTS = [PhaseChanged(ClientPhase.PROVISIONING, "target local"), PhaseChanged(ClientPhase.UPLOADING_CODE),
          PhaseChanged(ClientPhase.STARTED), PhaseChanged(MachinePhase.PREPARING), StatusChanged(TRAINING),
          LogChunk(0, b"epoch 1\n"), LogChunk(8, b"epoch 2\n"), Notice("a note")]


def test_the_console_holds_the_view_the_ui_would_fold(capfdbinary):
    console = Console()
    console.run_id = "digits-none"
    for event in EVENTS:
        console(event)
    expected = fold(RunView(run_id="digits-none", target="", state=""), EVENTS)
    assert console.view == expected
    assert console.last_offset == 16 and console.view.machine_phase == MachinePhase.TRAINING
    assert capfdbinary.readouterr().out == b"epoch 1\nepoch 2\n"  # the log, byte for byte, on stdout


def test_following_starts_with_the_training_and_ends_when_this_computer_collects(capfdbinary):
    console = Console()
    console(PhaseChanged(ClientPhase.PROVISIONING))
    console(PhaseChanged(ClientPhase.STARTED))
    assert not console.following  # an interrupt now interrupts the start
    console(StatusChanged(TRAINING))
    assert console.following  # an interrupt only stops following: the training goes on
    console(PhaseChanged(MachinePhase.SYNCING))
    assert console.following
    console(PhaseChanged(ClientPhase.COLLECTING, "outputs"))
    assert not console.following
    assert console.view.timeline[-1].phase == ClientPhase.COLLECTING


def test_a_log_alone_means_following(capfdbinary):
    """`trainrig logs -f` of a run whose status is not read yet."""
    console = Console()
    console(LogChunk(0, b"x\n"))
    assert console.following and console.last_offset == 2


def test_a_phase_said_twice_is_one_step_and_one_line(capfdbinary):
    console = Console()
    console(PhaseChanged(ClientPhase.DESTROYING))
    console(PhaseChanged(ClientPhase.DESTROYING))
    assert [s.phase for s in console.view.timeline] == [ClientPhase.DESTROYING]
    assert len(capfdbinary.readouterr().err.splitlines()) == 1


def test_progress_is_the_views_latest(capfdbinary):
    console = Console()
    for done in (10, 60, 100):
        console(Progress("code", done, 100, 3))
    assert console.view.progress == Progress("code", 100, 100, 3)
    assert capfdbinary.readouterr().out == b""  # progress is for the person (stderr), never the log
