"""RunView folds a run's journal record and typed events into what the UI draws."""

from __future__ import annotations

from infra.engine_outputs import StackOutputs
from infra.spec import EntryPoint, RunSpec
from runner.events import LogChunk, MetricPoint, Notice, PhaseChanged, StatusChanged, TelemetrySample
from runner.journal import RunRecord
from runner.machine import Machine
from runner.remote.status import Status
from runner.remote.telemetry import GpuSample, Sample
from runner.run_view import HISTORY, RunView, fold
from runner.states import MachinePhase, Outcome, RunState, parse

MACHINE = Machine("127.0.0.1", 2222, "me", ("ssh-ed25519 AAAA",), None, "python3", ".trainrig", ".trainrig/venvs")


def _record(state: str = "started", **kw) -> RunRecord:  # type: ignore[no-untyped-def]
    spec = RunSpec(code_name="digits", dataset_name="none", code_path="/tmp/digits", entry=EntryPoint(module="train"))
    rec = RunRecord(spec=spec, state=state, created_at="2026-01-01T10:00:00.000Z", machine=MACHINE, **kw)
    rec.phases = [["provisioning", "2026-01-01T10:00:00.000Z"], ["started", "2026-01-01T10:00:05.000Z"]]
    return rec


def test_states_compare_equal_to_the_journal_strings():
    assert RunState.UP == "up" and f"{MachinePhase.PULLING_DATASET}" == "pulling dataset"
    assert Outcome("install_failed") is Outcome.INSTALL_FAILED
    assert parse(Outcome, "from-the-future") is None and parse(RunState, None) is None
    assert RunState.DESTROYED.holds_resources is False and RunState.FINISHED.has_machine


def test_a_record_becomes_a_view_with_machine_elapsed_and_no_cost_for_local():
    view = RunView.from_record(_record())
    assert (view.run_id, view.target, view.state, view.machine) == ("digits-none", "local", "started", "me@127.0.0.1:2222")
    assert view.cost_usd is None and view.holds_resources and not view.downloaded
    assert view.elapsed_s(now=view_epoch("2026-01-01T10:01:00")) == 60.0
    assert [s.phase for s in view.timeline] == ["provisioning", "started"]


def view_epoch(utc: str) -> float:
    from runner.cost import epoch

    return epoch(utc)


def test_a_cloud_record_has_a_cost_that_stops_at_destroyed():
    rec = _record(state="destroyed", stack=StackOutputs("1.2.3.4", "me", "key", "bucket", 3.6))
    rec.phases.append(["destroyed", "2026-01-01T11:00:00.000Z"])
    view = RunView.from_record(rec, now=view_epoch("2026-01-01T15:00:00"))
    assert view.cost_usd == 3.6 and view.hourly_usd == 3.6 and not view.holds_resources and view.machine == ""
    assert view.elapsed_s(now=view_epoch("2026-01-01T15:00:00")) == 3600.0


def test_events_fold_into_phase_offsets_metrics_telemetry_and_outcome():
    status = Status("digits-none", phase="training", phases=[["preparing", "2026-01-01T10:00:06.000Z"],
                                                            ["training", "2026-01-01T10:00:09.000Z"]])
    sample = Sample(wall_time=1.0, cpu_percent=50.0, memory_used_mb=512, memory_total_mb=1024,
                    gpus=[GpuSample(0, "T4", utilization_percent=90.0, memory_used_mb=1, memory_total_mb=4)])
    view = fold(RunView.from_record(_record()), [
        PhaseChanged("preparing"), PhaseChanged("training"), StatusChanged(status),
        LogChunk(0, b"epoch 1\n"), LogChunk(8, b"epoch 2\n"),
        MetricPoint(1, 1.0, {"loss": 0.9, "acc": 0.5}, 0, 30), MetricPoint(2, 2.0, {"loss": 0.4}, 30, 55),
        TelemetrySample(sample, 0, 100), Notice("hello"),
    ])
    assert view.phase == "training" and view.log_offset == 16 and view.metrics_offset == 55
    assert view.loss == 0.4 and view.metrics == {"loss": 0.4, "acc": 0.5} and view.series["loss"] == ((1, 0.9), (2, 0.4))
    assert view.telemetry.cpu == (50.0,) and view.telemetry.memory == (50.0,) and view.telemetry.gpu == (90.0,)
    assert view.telemetry.gpu_memory == (25.0,) and view.telemetry.offset == 100 and view.notices == ("hello",)
    assert [(s.phase, s.on_machine) for s in view.timeline] == [
        ("provisioning", False), ("started", False), ("preparing", True), ("training", True)]

    done = Status("digits-none", phase="finished", outcome="failed", reason="exit 3", exit_code=3,
                  phases=status.phases + [["finished", "2026-01-01T10:01:00.000Z"]])
    ended = view.apply(StatusChanged(done))
    assert ended.phase == "failed" and ended.outcome == Outcome.FAILED and ended.exit_code == 3
    # The journal catching up (state finished) keeps what the events told.
    rec = _record(state="finished", outcome="failed", exit_code=3)
    again = ended.with_record(rec)
    assert again.phase == "failed" and again.loss == 0.4 and again.log_offset == 16
    assert [s.phase for s in again.timeline][-1] == "finished"


def test_long_series_are_thinned_but_keep_both_ends():
    view = RunView.from_record(_record())
    for i in range(3 * HISTORY):
        view = view.apply(MetricPoint(i, float(i), {"loss": 1.0 / (i + 1), "bad": float("nan")}, i, i + 1))
    points = view.series["loss"]
    assert len(points) <= HISTORY and points[0][0] == 0 and points[-1][0] == 3 * HISTORY - 1
    assert "bad" not in view.series and view.metric_step == 3 * HISTORY - 1


def test_a_downloaded_record_says_so():
    rec = _record(state="finished", outcome="succeeded", final_download=True, downloads=["/x/out"])
    view = RunView.from_record(rec)
    assert view.downloaded and view.downloads == ("/x/out",) and view.succeeded


def test_a_run_started_again_forgets_the_last_attempts_outcome():
    old = Status("digits-none", phase="finished", outcome="failed", exit_code=3, reason="exit 3")
    view = RunView.from_record(_record(state="finished", outcome="failed", exit_code=3)).apply(StatusChanged(old))
    assert view.phase == "failed"
    again = view.with_record(_record(state="started"))  # `start` reset the record
    assert again.outcome == "failed"  # the status seen is still the old attempt's until the machine says more
    new = again.apply(StatusChanged(Status("digits-none", phase="training")))
    assert (new.outcome, new.exit_code, new.reason, new.phase) == (None, None, "", "training")
