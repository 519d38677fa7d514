"""`trainrig dataset push/pull` through the real command line, against moto's S3 server and the GCS emulator."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.conftest import make_bucket


@pytest.fixture
def buckets(bucket_servers, env):  # type: ignore[no-untyped-def]
    env.update(bucket_servers)  # `env` may have been copied before the servers started
    return {"s3": make_bucket("s3"), "gs": make_bucket("gs")}


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_push_then_unchanged_push_then_pull(trainrig, buckets, tmp_path, scheme):
    src = tmp_path / "beer"
    (src / "train").mkdir(parents=True)
    for i in range(30):
        (src / "train" / f"img {i}.jpg").write_bytes(os.urandom(1000 + i))
    uri = f"{scheme}://{buckets[scheme]}/beer"
    first = trainrig("dataset", "push", str(src), uri)
    assert first.code == 0, first.err
    assert "30 of 30 files transferred" in first.err
    second = trainrig("dataset", "push", str(src), uri)
    assert second.code == 0 and "unchanged (30 files), nothing transferred" in second.err
    pulled = trainrig("dataset", "pull", uri, str(tmp_path / "back"))
    assert pulled.code == 0, pulled.err
    assert sorted(p.name for p in (tmp_path / "back" / "train").iterdir()) == sorted(p.name for p in (src / "train").iterdir())


def test_bad_locations_and_missing_buckets_are_exit_2(trainrig, buckets, tmp_path):
    (tmp_path / "d").mkdir()
    for args, expected in [
        (["push", str(tmp_path / "d"), "s3://Bad_Bucket/x"], "not a valid bucket name"),
        (["push", str(tmp_path / "d"), f"s3://trainrig-missing-{uuid.uuid4().hex[:6]}/x"], "does not exist"),
        (["pull", f"gs://trainrig-missing-{uuid.uuid4().hex[:6]}/x", str(tmp_path / "e")], "does not exist"),
        (["push", str(tmp_path / "nope"), f"s3://{buckets['s3']}/x"], "does not exist"),
    ]:
        done = trainrig("dataset", *args)
        assert done.code == 2, (args, done.err)
        assert expected in done.err.strip().splitlines()[-1]


def test_missing_aws_credentials_are_named(trainrig, env, bucket_servers, tmp_path):
    (tmp_path / "d").mkdir()
    env.update(bucket_servers)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(k, None)
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    done = trainrig("dataset", "push", str(tmp_path / "d"), "s3://some-bucket/x")
    assert done.code == 2 and "no AWS credentials found" in done.err


def test_missing_google_credentials_are_named(trainrig, env, tmp_path):
    (tmp_path / "d").mkdir()
    for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG"):
        env.pop(k, None)
    # No metadata server either: google-auth would otherwise wait for one.
    env.update(NO_GCE_CHECK="True", GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9",
               CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), HOME=str(tmp_path))
    done = trainrig("dataset", "push", str(tmp_path / "d"), "gs://some-bucket/x", timeout=120)
    assert done.code == 2, done.err
    assert "no Google credentials found" in done.err


def test_a_refused_right_names_the_identity(trainrig, env, tmp_path):
    """moto's server with IAM enforced (INITIAL_NO_AUTH_ACTION_COUNT): a user who may list and read
    but not write. Known moto limit: with IAM enforced it rejects the signature of a listing whose
    prefix holds a '/', so this test pushes to the bucket's root."""
    import json
    import subprocess
    import sys
    import time

    import boto3

    from tests.buckets import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="4"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="admin", aws_secret_access_key="admin")
        iam = boto3.client("iam", **kw)
        for _ in range(100):
            try:
                iam.create_user(UserName="reader")  # the 4 unauthenticated actions set the scene
                break
            except Exception:
                time.sleep(0.1)
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject", "sts:GetCallerIdentity"], "Resource": "*"}],
        }))
        boto3.client("s3", **kw).create_bucket(Bucket="read-only-bucket")
        env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID=key["AccessKeyId"],
                   AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"], AWS_DEFAULT_REGION="us-east-1")
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "x.txt").write_text("x")
        done = trainrig("dataset", "push", str(tmp_path / "d"), "s3://read-only-bucket")
        assert done.code == 2, done.err
        assert "user/reader lacks the right to write to s3://read-only-bucket" in done.err
    finally:
        server.terminate()
        server.wait(10)
