"""run.json is strict JSON (jq and other languages read it), even when a metric went NaN or infinite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import trainrig_helpers as th
from infra.spec import build_spec
from runner.journal import RunRecord
from runner.manifest import write_manifest
from runner.transfer import TransferResult

DIGITS = str(Path(__file__).resolve().parents[2] / "examples" / "digits")


def _refuse(word: str) -> None:
    raise ValueError(f"not strict JSON: {word}")


def test_a_nan_or_infinite_metric_keeps_run_json_strict(tmp_path):
    writer = th.MetricsWriter(str(tmp_path / "logs"), tensorboard=False)
    writer.log(1, loss=0.5, grad=1.0)
    writer.log(2, loss=float("nan"), grad=float("inf"))
    writer.close()
    record = RunRecord(spec=build_spec(code=DIGITS, code_name="digits", dataset_name="nan"))
    empty = TransferResult(0, 0, 0, 0, "")
    path = write_manifest(tmp_path, record, None, empty, empty)
    manifest = json.loads(path.read_text(), parse_constant=_refuse)  # NaN/Infinity would be refused
    assert manifest["metrics"]["loss"]["last"] == "NaN"
    assert manifest["metrics"]["loss"]["best"] == 0.5  # NaN is never best
    assert manifest["metrics"]["grad"]["last"] == "Infinity"
    with pytest.raises(ValueError):
        json.loads('{"x": NaN}', parse_constant=_refuse)  # the check itself can fail


OUTPUTS = """
    import os
    out = os.environ["TRAINRIG_OUTPUT_DIR"]
    os.makedirs(os.path.join(out, "checkpoints", "ünï"), exist_ok=True)
    open(os.path.join(out, "model.bin"), "wb").write(bytes(range(256)) * 4000)
    open(os.path.join(out, "checkpoints", "ünï", "step-1.txt"), "w").write("one")
    open(os.path.join(out, "empty"), "w").close()
"""


def test_run_json_tree_hash_is_the_same_downloaded_from_the_machine_or_from_the_bucket(bucket_servers, env, trainrig, tmp_path):
    """Two runs writing the same outputs: one downloaded from its machine (the transfer protocol),
    one with --output-store, downloaded from the bucket."""
    from tests.conftest import make_bucket, make_code, manifest, only_folder

    env.update(bucket_servers)
    bucket = make_bucket("s3")
    hashes = []
    for name, store in (("treewire", ()), ("treebucket", ("--output-store", f"s3://{bucket}/runs"))):
        done = trainrig("run", str(make_code(tmp_path / name, OUTPUTS)), "--dataset-name", "none", *store,
                        "--outputs", str(tmp_path / name / "out"))
        assert done.code == 0, done.err
        outputs = manifest(only_folder(tmp_path / name / "out"))["outputs"]
        assert outputs["files"] == 3 and len(outputs["tree_hash"]) == 64
        hashes.append(outputs["tree_hash"])
    assert hashes[0] == hashes[1]
