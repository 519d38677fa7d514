"""A final sync that cannot finish because its bucket fails (deleted under the run, for real, on moto's
S3 server): the training succeeded, yet `run` exits 1 and keeps the machine, the status says why,
and once the bucket is back the printed `trainrig download` finishes the sync and gets every file."""

from __future__ import annotations

import json
import shlex

from runner.remote.location import parse_location
from runner.remote.stores import open_store
from tests.conftest import make_bucket, make_code, only_folder

N = 12


def test_a_bucket_that_fails_the_final_sync_keeps_the_machine_and_download_finishes_it(bucket_servers, env, trainrig, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    rid = "gone-bucket"
    # The training's last act: the run's bucket disappears (as a mistaken lifecycle rule would do it).
    code = make_code(tmp_path / "gone", f"""
        import os, boto3
        out = os.environ["TRAINRIG_OUTPUT_DIR"]
        for i in range({N}):
            open(os.path.join(out, "f%02d.txt" % i), "w").write("output %d" % i)
        print("trained", flush=True)
        b = boto3.resource("s3").Bucket({bucket!r})
        b.objects.all().delete()
        b.delete()
    """)
    outputs = tmp_path / "got"
    done = trainrig("run", str(code), "--code-name", "gone", "--dataset-name", "bucket", "--output-store", f"s3://{bucket}/runs",
                    "--outputs", str(outputs))
    assert done.code == 1, done.out + done.err
    status = json.loads(trainrig("status", rid, "--json").out)
    s = status["status"]
    assert s["outcome"] == "succeeded" and s["final_sync_ok"] is False and s["sync_error"]
    assert status["run"]["state"] == "finished"  # kept, not destroyed

    make_bucket_named(bucket)
    text = done.out + done.err
    start = text.index(f"`trainrig download {rid}")
    again = trainrig(*shlex.split(text[start + 1:text.index("`", start + 1)])[1:])
    assert again.code == 0, again.out + again.err
    folder = only_folder(outputs)
    assert sorted(p.name for p in (folder / "outputs").iterdir()) == ["f%02d.txt" % i for i in range(N)]
    assert "trained" in (folder / "logs" / "train.log").read_text()
    keys = {o.rel for o in open_store(parse_location(f"s3://{bucket}/runs/{rid}")).objects()}
    assert {"status.json", "logs/train.log"} | {"outputs/f%02d.txt" % i for i in range(N)} <= keys

    down = trainrig("down", rid, "-y")
    assert down.code == 0, down.out + down.err


def make_bucket_named(name: str) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket=name)
