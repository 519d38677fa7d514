"""Metrics and telemetry followed live on the `local` target: the real embedded SSH server, the
real supervisor and training, the real command line."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from infra.spec import build_spec
from runner.events import MetricPoint, Notice, StatusChanged, TelemetrySample
from runner.follow import Offsets
from runner.journal import Journal
from runner.lifecycle import Lifecycle
from runner.remote import telemetry, venv
from tests.conftest import make_code, manifest, only_folder

# 60 points; a pause after the first ten, so that "while it trains" cannot be an accident.
SIXTY_POINTS = """
    import time
    import trainrig_helpers as th
    for step in range(60):
        th.log_metrics(step, loss=1.0 / (step + 1), accuracy=step / 60)
        time.sleep(1.5 if step == 9 else 0.01)
"""


@pytest.fixture(scope="module", autouse=True)
def warm_venv(state_home: Path) -> None:
    cache = state_home / "cache" / "venvs"
    cache.mkdir(parents=True, exist_ok=True)
    venv.ensure(str(cache), "", str(cache / "warm.log"))


class Enough(Exception):
    pass


def test_metrics_arrive_while_training_in_order_and_none_is_lost_across_a_restart(state_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINRIG_HOME", str(state_home))
    spec = build_spec(code=str(make_code(tmp_path / "sixty", SIXTY_POINTS)), code_name="sixty", dataset_name="none")
    life = Lifecycle(Journal(state_home))
    asyncio.run(life.up(spec))
    try:
        asyncio.run(life.start(spec.run_id, follow_log=False))
        first: list[MetricPoint] = []
        phase_at_first_point = []
        phase = [""]

        def five_then_stop(event):  # type: ignore[no-untyped-def]
            if isinstance(event, StatusChanged):
                phase[0] = event.status.phase
            if isinstance(event, MetricPoint):
                first.append(event)
                phase_at_first_point.append(phase[0])
                if len(first) == 5:
                    raise Enough

        with pytest.raises(Enough):
            asyncio.run(Lifecycle(Journal(state_home), five_then_stop).follow_run(spec.run_id, Offsets(log=None, metrics=0)))
        assert phase_at_first_point[0] == "training"  # seen live, not after the fact

        second: list[MetricPoint] = []
        samples: list[TelemetrySample] = []

        def rest(event):  # type: ignore[no-untyped-def]
            if isinstance(event, MetricPoint):
                second.append(event)
            elif isinstance(event, TelemetrySample):
                samples.append(event)

        status = asyncio.run(Lifecycle(Journal(state_home), rest).follow_run(
            spec.run_id, Offsets(log=None, metrics=first[-1].end, telemetry=0)))
        assert status.outcome == "succeeded"
        points = first + second
        assert [p.step for p in points] == list(range(60))  # in order, none lost, none repeated
        assert points[59].values == {"loss": 1.0 / 60, "accuracy": 59 / 60}
        assert all(a.end == b.offset for a, b in zip(points, points[1:]))

        # Telemetry of a machine without a GPU: a fact, not an error.
        assert len(samples) >= 2
        for t in samples:
            assert t.sample.gpus == [] and t.sample.gpu_note == telemetry.NO_GPU
            assert t.sample.disk_free_mb > 0 and t.sample.memory_total_mb > 0
        assert all(a.end == b.offset for a, b in zip(samples, samples[1:])) and samples[0].offset == 0
    finally:
        asyncio.run(life.down(spec.run_id))


def test_logs_metrics_prints_the_points_and_the_manifest_keeps_last_and_best(trainrig, tmp_path):
    code = make_code(tmp_path / "curve", """
        import trainrig_helpers as th
        for step, (loss, acc) in enumerate([(2.0, 0.1), (0.5, 0.8), (0.9, 0.6)]):
            th.log_metrics(step, loss=loss, accuracy=acc)
        print("trained", flush=True)
    """)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        started = trainrig("start", "curve-none")
        assert started.code == 0 and started.out == "trained\n", started.err
        followed = trainrig("logs", "curve-none", "--metrics", "-f")
        assert followed.code == 0, followed.err
        assert followed.out.splitlines() == [
            "step      0  loss 2  accuracy 0.1", "step      1  loss 0.5  accuracy 0.8", "step      2  loss 0.9  accuracy 0.6",
        ]
        once = trainrig("logs", "curve-none", "--metrics")
        assert once.code == 0 and once.out == followed.out
        status = trainrig("status", "curve-none")
        assert status.code == 0 and "no nvidia-smi on this machine: no NVIDIA GPU" in status.out
        assert re.search(r"^telemetry cpu \S+  memory [\d.]+/[\d.]+ GB  disk [\d.]+ GB free", status.out, re.M), status.out
        telemetry_json = json.loads(trainrig("status", "curve-none", "--json").out)["telemetry"]
        assert telemetry_json["disk_free_mb"] > 0 and telemetry_json["gpus"] == []
        done = trainrig("download", "curve-none", "--outputs", str(tmp_path / "out"))
        assert done.code == 0, done.err
    finally:
        assert trainrig("down", "curve-none", "--stop", "--discard-outputs").code == 0
    m = manifest(only_folder(tmp_path / "out"))
    assert m["metrics"] == {
        "loss": {"goal": "min", "last": 0.9, "last_step": 2, "best": 0.5, "best_step": 1, "points": 3},
        "accuracy": {"goal": "max", "last": 0.6, "last_step": 2, "best": 0.8, "best_step": 1, "points": 3},
    }


# The same script, run as the module contract (folders as arguments) and as a plain command
# (folders from the environment): the helpers import with no install and find the same folders.
HELPED = """
    import os, sys
    import trainrig_helpers as th
    dirs = th.directories()
    th.logger().info("dataset %s", os.path.basename(dirs.dataset))
    th.log_metrics(1, loss=0.25)
    th.save_checkpoint(1, lambda p: open(p, "w").write("w"), suffix=".txt")
    print("argv", sys.argv[1:3], "latest", os.path.basename(th.latest_checkpoint(suffix=".txt").path), flush=True)
"""


@pytest.mark.parametrize("entry", [["--module", "train"], ["--command", "python train.py"]], ids=["module", "command"])
def test_the_helpers_work_under_both_entry_points(trainrig, tmp_path, entry):
    code = make_code(tmp_path / "helped", HELPED)
    done = trainrig("run", str(code), "--dataset-name", "none", *entry, "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    argv = "['--dataset_directory', '" if entry[0] == "--module" else "[]"
    assert f"argv {argv}" in done.out and "latest checkpoint-000001.txt" in done.out
    assert "INFO dataset dataset" in done.out  # the logger's stdout, i.e. the training log
    folder = only_folder(tmp_path / "out")
    assert (folder / "outputs" / "checkpoints" / "checkpoint-000001.txt").read_text() == "w"
    assert json.loads((folder / "logs" / "metrics.jsonl").read_text())["values"] == {"loss": 0.25}
    assert "INFO dataset dataset" in (folder / "logs" / "script.log").read_text()
    assert manifest(folder)["metrics"]["loss"]["last"] == 0.25


def test_a_file_of_the_users_with_the_helpers_name_wins(trainrig, tmp_path):
    code = make_code(tmp_path / "mine", """
        import trainrig_helpers
        print(trainrig_helpers.WHO, flush=True)
    """, **{"trainrig_helpers.py": 'WHO = "the user\'s own"\n'})
    done = trainrig("run", str(code), "--dataset-name", "none", "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    assert done.out == "the user's own\n"
    assert (only_folder(tmp_path / "out") / "logs").is_dir()


def test_a_reconnect_after_the_connection_dies_repeats_and_loses_no_point(state_home, tmp_path, monkeypatch):
    import os
    import signal

    monkeypatch.setenv("TRAINRIG_HOME", str(state_home))
    code = make_code(tmp_path / "cut", """
        import time
        import trainrig_helpers as th
        for step in range(80):
            th.log_metrics(step, loss=1.0 / (step + 1))
            time.sleep(0.05)
    """)
    spec = build_spec(code=str(code), code_name="cut", dataset_name="none")
    life = Lifecycle(Journal(state_home))
    asyncio.run(life.up(spec))
    try:
        asyncio.run(life.start(spec.run_id, follow_log=False))
        steps: list[int] = []
        notices: list[str] = []

        def kill_the_server_after_five(event):  # type: ignore[no-untyped-def]
            if isinstance(event, MetricPoint):
                steps.append(event.step)
                if len(steps) == 5:  # the SSH server dies: the connection with it
                    os.kill(Journal(state_home).load(spec.run_id).local_server_pid, signal.SIGKILL)
            elif isinstance(event, Notice):
                notices.append(event.text)

        status = asyncio.run(Lifecycle(Journal(state_home), kill_the_server_after_five).follow_run(
            spec.run_id, Offsets(log=None, metrics=0)))
        assert status.outcome == "succeeded"
        assert any("reconnecting, the training goes on" in n for n in notices)
        assert steps == list(range(80))
    finally:
        asyncio.run(life.down(spec.run_id))
