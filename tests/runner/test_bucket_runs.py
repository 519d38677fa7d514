"""Whole runs on the `local` target with the dataset in a bucket and outputs synced to a bucket:
moto's S3 server and the GCS emulator, real SSH, real supervisor."""

from __future__ import annotations

import pytest

from runner.remote.location import parse_location
from runner.remote.stores import open_store
from tests.conftest import make_bucket, make_code, manifest, only_folder, record

TRAIN = """
    import os, sys, time
    data = os.environ["TRAINRIG_DATASET_DIR"]
    out = os.environ["TRAINRIG_OUTPUT_DIR"]
    rows = open(os.path.join(data, "rows.csv")).read().split()
    print(f"read {len(rows)} rows", flush=True)
    open(os.path.join(out, "model.txt"), "w").write(str(sum(map(int, rows))))
    if os.environ.get("CRASH"):
        time.sleep(2.5)  # past a sync
        print("crashing", flush=True)
        sys.exit(4)
"""


def put_dataset(scheme: str, bucket: str, tmp_path) -> str:
    src = tmp_path / "data"
    (src / "sub dir").mkdir(parents=True)
    (src / "rows.csv").write_text("1\n2\n3\n")
    (src / "sub dir" / "ünï.txt").write_text("x")
    uri = f"{scheme}://{bucket}/datasets/rows"
    from runner.remote.sync import push

    push(str(src), open_store(parse_location(uri)), None)
    return uri


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_run_pulls_its_dataset_from_a_bucket_and_syncs_outputs_to_one(scheme, bucket_servers, env, trainrig, tmp_path, state_home):
    env.update(bucket_servers)
    bucket = make_bucket(scheme)
    uri = put_dataset(scheme, bucket, tmp_path)
    code = make_code(tmp_path / f"b{scheme}", TRAIN)
    done = trainrig("run", str(code), "--dataset", uri, "--dataset-name", "rows", "--output-store", f"{scheme}://{bucket}/runs",
                    "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    assert "read 3 rows" in done.out
    assert "] pulling dataset" in done.err and "] uploading dataset" not in done.err
    folder = only_folder(tmp_path / "out")
    assert (folder / "outputs" / "model.txt").read_text() == "6"
    assert "read 3 rows" in (folder / "logs" / "train.log").read_text()
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and len(m["dataset_hash"]) == 64
    run_id = f"b{scheme}-rows"
    keys = {o.rel for o in open_store(parse_location(f"{scheme}://{bucket}/runs/{run_id}")).objects()}
    assert {"outputs/model.txt", "logs/train.log", "status.json"} <= keys
    assert record(state_home, run_id)["state"] == "destroyed"
    # the machine is gone; the outputs still come home from the bucket
    again = trainrig("download", run_id, "--outputs", str(tmp_path / "later"))
    assert again.code == 0, again.err
    assert (only_folder(tmp_path / "later") / "outputs" / "model.txt").read_text() == "6"


def test_a_crashed_run_keeps_its_last_synced_outputs_in_the_bucket(bucket_servers, env, trainrig, tmp_path):
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    uri = put_dataset("s3", bucket, tmp_path)
    code = make_code(tmp_path / "crashb", TRAIN)
    done = trainrig("run", str(code), "--dataset", uri, "--dataset-name", "rows", "--output-store", f"s3://{bucket}/runs",
                    "--sync-interval", "1s", "--env", "CRASH=1", "--outputs", str(tmp_path / "out"))
    assert done.code == 1 and "exited with code 4" in done.err
    folder = only_folder(tmp_path / "out")
    assert (folder / "outputs" / "model.txt").read_text() == "6"
    assert (manifest(folder)["outcome"], manifest(folder)["exit_code"]) == ("failed", 4)


def test_a_missing_dataset_bucket_is_refused_before_anything_starts(bucket_servers, env, trainrig, tmp_path, state_home):
    env.update(bucket_servers)
    code = make_code(tmp_path / "nobucket", TRAIN)
    done = trainrig("run", str(code), "--dataset", "s3://trainrig-no-such-bucket-zz/x", "--dataset-name", "rows")
    assert done.code == 2 and "does not exist" in done.err.strip().splitlines()[-1]
    assert not (state_home / "runs" / "nobucket-rows").exists()
