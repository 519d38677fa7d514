"""Deterministic runs for the snapshot tests: RunViews folded from fixed records and typed events,
drawn by the real app through its factory arguments (no journal, no followers, a stopped clock)."""

from __future__ import annotations

from infra.cloud import CloudSpec
from infra.engine_outputs import StackOutputs
from infra.spec import EntryPoint, RunSpec
from runner.cost import epoch
from runner.events import MetricPoint, StatusChanged, TelemetrySample
from runner.journal import RunRecord
from runner.machine import Machine
from runner.remote.status import MachineFacts, Status
from runner.remote.telemetry import GpuSample, Sample
from runner.run_view import RunView, fold
from tui.app import TrainrigApp

NOW = epoch("2026-01-01T12:30:00")
T0 = "2026-01-01T12:00:00.000Z"


def _record(code: str, state: str, target: str = "local", **kw) -> RunRecord:  # type: ignore[no-untyped-def]
    cloud = CloudSpec("T4", zone="us-central1-a") if target == "gcp" else None
    spec = RunSpec(code_name=code, dataset_name="beer", code_path=f"/work/{code}", entry=EntryPoint(module="train"),
                   target=target, cloud=cloud)
    machine = Machine("10.0.0.7" if cloud else "127.0.0.1", 22 if cloud else 40022, "trainrig", ("ssh-ed25519 AAAA",),
                      None, "python3", ".trainrig", ".trainrig/venvs")
    rec = RunRecord(spec=spec, state=state, created_at=T0, machine=machine, **kw)
    rec.phases = [["provisioning", T0], ["started", "2026-01-01T12:01:00.000Z"]]
    if state == "destroyed":
        rec.phases.append(["destroyed", "2026-01-01T12:20:00.000Z"])
    return rec


def _training(view: RunView, steps: int = 40, outcome: str | None = None) -> RunView:
    status = Status(view.run_id, phase="finished" if outcome else "training", outcome=outcome, phases=[["preparing", "2026-01-01T12:01:01.000Z"],
                                                           ["installing", "2026-01-01T12:01:05.000Z"],
                                                           ["training", "2026-01-01T12:02:00.000Z"]],
                    machine=MachineFacts(hostname="gpu-box", cpus=8, memory_gb=32.0))
    events: list = [StatusChanged(status)]
    for i in range(steps):
        events.append(MetricPoint(i, float(i), {"loss": 2.0 / (1 + i) + 0.05, "accuracy": i / steps}, i * 40, i * 40 + 40))
        cpu = 40 + (i * 7) % 50
        gpu = GpuSample(0, "Tesla T4", utilization_percent=60 + (i * 3) % 40, memory_used_mb=9000, memory_total_mb=15360)
        events.append(TelemetrySample(Sample(float(i), cpu_percent=cpu, memory_used_mb=8000 + i * 50,
                                             memory_total_mb=32000, gpus=[gpu]), i * 100, i * 100 + 100))
    return fold(view, events)


def views() -> list[RunView]:
    live = _training(RunView.from_record(_record("yolo", "started", "gcp",
                                                 stack=StackOutputs("10.0.0.7", "trainrig", "k", "b", 0.54)), NOW))
    failed = fold(RunView.from_record(_record("resnet", "finished", outcome="failed", exit_code=3,
                                              reason="the training exited with code 3"), NOW), [])
    done = _training(RunView.from_record(_record("digits", "finished", outcome="succeeded", exit_code=0,
                                                 final_download=True, downloads=["/home/me/outputs/x"]), NOW), 10,
                     outcome="succeeded")
    gone = RunView.from_record(_record("bert", "destroyed", outcome="succeeded", final_download=True), NOW)
    return [live, failed, done, gone]


LOG = b"".join(b"epoch %d/40 \x1b[32mloss\x1b[0m %.3f\n 10%%|#   |\r100%%|####|\n" % (i, 2.0 / (1 + i)) for i in range(40))


def app() -> TrainrigApp:
    return TrainrigApp(views=views(), now=NOW, logs={"yolo-beer": LOG})
