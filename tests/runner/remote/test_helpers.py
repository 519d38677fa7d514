"""trainrig_helpers, the module training scripts import: real files, a real TensorBoard reader
where one is installed."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import trainrig_helpers as th
from trainrig_helpers import tfevents

HELPERS = Path(th.__file__).resolve().parent


def test_metrics_are_one_flushed_json_line_each_and_keep_nan(tmp_path):
    w = th.MetricsWriter(str(tmp_path), tensorboard=False)
    w.log(0, loss=1.5, accuracy=0.25)
    # Read while the writer is still open: each line must already be on disk (flushed).
    first = (tmp_path / "metrics.jsonl").read_text()
    w.log(1, loss=float("nan"), grad=float("inf"))
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    w.close()
    assert first.count("\n") == 1
    assert [line["step"] for line in lines] == [0, 1]
    assert lines[0]["values"] == {"loss": 1.5, "accuracy": 0.25}
    assert lines[1]["values"] == {"loss": "NaN", "grad": "Infinity"}  # strict JSON, nothing lost
    assert all(isinstance(line["wall_time"], float) for line in lines)


def test_metric_steps_and_values_are_checked(tmp_path):
    w = th.MetricsWriter(str(tmp_path), tensorboard=False)
    with pytest.raises(TypeError, match="step must be an integer"):
        w.log(1.5, loss=1.0)
    with pytest.raises(ValueError, match="0 or more"):
        w.log(-1, loss=1.0)
    with pytest.raises(TypeError, match="'loss' must be a number"):
        w.log(1, loss="low")
    with pytest.raises(ValueError, match="at least one value"):
        w.log(1)
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_crc32c_matches_the_standard_check_value():
    # The check value of CRC-32C (Castagnoli) for "123456789", from RFC 3720's test vectors.
    assert tfevents.crc32c(b"123456789") == 0xE3069283


def test_tensorboard_reads_the_event_files(tmp_path):
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as e:
        pytest.skip(f"tensorboard is not installed here: {e}")
    w = th.MetricsWriter(str(tmp_path))
    for step in range(4):
        w.log(step, loss=1.0 / (step + 1), accuracy=step / 4)
    w.close()
    [events] = list((tmp_path / "tensorboard").iterdir())
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["accuracy", "loss"]
    got = [(e.step, round(e.value, 5)) for e in acc.Scalars("loss")]
    assert got == [(0, 1.0), (1, 0.5), (2, 0.33333), (3, 0.25)]


def test_directories_come_from_arguments_then_environment_then_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINRIG_OUTPUT_DIR", str(tmp_path / "env-out"))
    monkeypatch.delenv("TRAINRIG_DATASET_DIR", raising=False)
    monkeypatch.delenv("TRAINRIG_LOGS_DIR", raising=False)
    d = th.directories(["--epochs", "3", "--logs_directory", str(tmp_path / "arg-logs")])
    assert d == th.Directories(dataset="data", output=str(tmp_path / "env-out"), logs=str(tmp_path / "arg-logs"))
    assert (tmp_path / "env-out").is_dir() and (tmp_path / "arg-logs").is_dir()


def test_the_logger_writes_each_line_once_to_stdout_and_its_file(tmp_path, capsys):
    log = th.logger("unit", str(tmp_path))
    again = th.logger("unit", str(tmp_path))
    log.info("hello %d", 1)
    assert again is log
    out = capsys.readouterr().out
    assert out.count("hello 1") == 1
    assert (tmp_path / "unit.log").read_text().count("INFO hello 1") == 1
    for h in log.handlers:
        h.close()
    log.handlers.clear()
    logging.getLogger("trainrig_helpers.unit")._trainrig_ready = False


def test_checkpoints_are_whole_kept_to_n_and_the_latest_is_found(tmp_path):
    folder = str(tmp_path / "ckpt")
    assert th.latest_checkpoint(folder) is None
    for step in (1, 2, 10, 3):
        th.save_checkpoint(step, lambda p, s=step: Path(p).write_text(f"weights {s}"), directory=folder, keep=3)
    names = sorted(os.listdir(folder))
    assert names == ["checkpoint-000002.ckpt", "checkpoint-000003.ckpt", "checkpoint-000010.ckpt"]
    latest = th.latest_checkpoint(folder)
    assert latest.step == 10 and Path(latest.path).read_text() == "weights 10"

    def crash(path):
        Path(path).write_text("half")
        raise RuntimeError("out of memory while saving")

    with pytest.raises(RuntimeError):
        th.save_checkpoint(11, crash, directory=folder)
    # No half checkpoint under any name: the latest is still step 10.
    assert sorted(os.listdir(folder)) == names and th.latest_checkpoint(folder).step == 10


def test_savers_that_add_a_suffix_keep_the_checkpoint_name(tmp_path):
    np = pytest.importorskip("numpy", reason="numpy is not installed here")
    c = th.save_checkpoint(4, lambda p: np.savez(p, w=np.ones(3)), suffix=".npz", directory=str(tmp_path))
    assert os.listdir(tmp_path) == ["checkpoint-000004.npz"] and c.path.endswith("checkpoint-000004.npz")


def test_the_helpers_import_with_nothing_but_python_from_their_folder(tmp_path):
    # As on the machine: a fresh interpreter with only the helpers' folder on its path.
    code = "import sys, trainrig_helpers as th; th.MetricsWriter(sys.argv[1]).log(1, loss=0.5); print(sorted(sys.modules['trainrig_helpers'].__all__))"
    done = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(HELPERS.parent), "PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    assert "log_metrics" in done.stdout
    assert math.isclose(json.loads((tmp_path / "metrics.jsonl").read_text())["values"]["loss"], 0.5)


def test_the_user_flags_that_look_like_abbreviations_stay_the_user_flags(tmp_path, monkeypatch):
    # argparse would read --output as --output_directory, --data as --dataset_directory, --log as
    # --logs_directory: then `torch.save("model.pt")` would meet a folder named model.pt.
    monkeypatch.chdir(tmp_path)
    for var in ("TRAINRIG_DATASET_DIR", "TRAINRIG_OUTPUT_DIR", "TRAINRIG_LOGS_DIR"):
        monkeypatch.delenv(var, raising=False)
    d = th.directories(["--log", "debug", "--output", "model.pt", "--data", "coco.yaml"], create=False)
    assert d == th.Directories(dataset="data", output="outputs", logs="logs")


def test_a_loss_beyond_float32_is_logged_as_infinity_and_never_ends_the_training(tmp_path):
    writer = th.MetricsWriter(str(tmp_path))
    writer.log(1, loss=1e39)
    writer.log(2, loss=-(2.0 ** 1000))
    writer.close()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["values"]["loss"] for x in lines] == [1e39, -(2.0 ** 1000)]  # the JSON keeps the real value
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tensorboard").iterdir())
