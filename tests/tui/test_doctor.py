"""`trainrig doctor` through the real command line, against moto's EC2/IAM/S3 server (its own process)
and the GCS emulator: leftovers of runs with no stack are listed with their run ids, price and delete
commands; a run the journal knows is not; `--clean` asks (without a terminal it needs --yes), then
deletes them; the exit code says whether all is well."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cloud import CloudOptions
from infra.spec import build_spec
from runner.journal import Journal, RunRecord
from tests.buckets import environment, gcs_emulator
from tests.runner.cloud_resources import aws_existing, aws_run, gcs_run_bucket, moto_server, reset

DIGITS = str(Path(__file__).resolve().parents[2] / "examples" / "digits")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def moto_process():  # type: ignore[no-untyped-def]
    with moto_server() as env:
        yield env


@pytest.fixture(autouse=True)
def moto(moto_process):  # type: ignore[no-untyped-def]
    """An empty server; this process's boto3 (which makes the resources) points at it too."""
    reset(moto_process)
    with environment(moto_process):
        yield moto_process


@pytest.fixture
def env(env, tmp_path, moto):  # type: ignore[no-untyped-def]
    """(Overrides conftest's, so the `trainrig` fixture runs with it.) AWS is moto's server; no
    credentials, defaults or emulators from the developer's own configuration or other tests."""
    env = dict(env)
    env["HOME"] = str(tmp_path / "home")
    env["CLOUDSDK_CONFIG"] = str(tmp_path / "gcloud")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "aws-config")
    for var in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST",
                "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(var, None)
    env.update(moto)
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "NO_GCE_CHECK": "true"})  # never ask a metadata server
    return env


def _live_aws_run(state_home: Path, code: str) -> str:
    spec = build_spec(code=DIGITS, code_name=code, dataset_name="t4", target="aws",
                      cloud=CloudOptions(accelerator="T4", region="us-east-1", ssh_from="203.0.113.7/32"))
    Journal(state_home).save(RunRecord(spec=spec, state="up", stack_created=True))
    return spec.run_id


def _doctor(cli, *args: str):  # type: ignore[no-untyped-def]
    done = cli("doctor", "--cloud", "aws", "--region", "us-east-1", "--json", *args)
    return done, json.loads(done.out) if done.out.strip() else None


def test_doctor_lists_the_leftovers_of_runs_no_live_run_knows(trainrig, state_home):
    known = _live_aws_run(state_home, "alive")
    try:
        aws_run(known)
        lost = aws_run("lost-t4")
        done, report = _doctor(trainrig)
        assert done.code == 1, done.err  # leftovers found
        assert {(f["kind"], f["id"]) for f in report["leftovers"]} == set(lost.items())
        assert {f["run_id"] for f in report["leftovers"]} == {"lost-t4"}  # not the run the journal knows
        machine = next(f for f in report["leftovers"] if f["kind"] == "instance")
        assert machine["hourly_usd"] > 0 and 0 <= machine["age_s"] < 600
        checks = {c["name"]: c for c in report["checks"]}
        assert checks["credentials aws"]["status"] == "ok"
        assert checks["clock aws"]["status"] == "ok", checks["clock aws"]  # compared with moto's Date header
        assert report["errors"] == []
        # The table for a person: each leftover's delete command, then the one that deletes them all.
        text = trainrig("doctor", "--cloud", "aws", "--region", "us-east-1")
        assert text.code == 1
        lines = [line.strip() for line in text.out.splitlines()]
        assert f"aws ec2 terminate-instances --region us-east-1 --instance-ids {lost['instance']}" in lines
        assert text.out.splitlines()[-1].endswith("trainrig doctor --clean")
    finally:
        Journal(state_home).remove(known)


def test_doctor_clean_asks_for_yes_without_a_terminal_then_deletes_the_leftovers_only(trainrig, state_home):
    known = _live_aws_run(state_home, "kept")
    try:
        kept = aws_run(known)
        lost = aws_run("orphan-t4")
        refused, _ = _doctor(trainrig, "--clean")
        assert refused.code == 2 and "trainrig doctor --clean --yes" in refused.err
        assert lost["instance"] in aws_existing()["instance"]  # nothing was deleted
        done, report = _doctor(trainrig, "--clean", "--yes")
        assert done.code == 0, done.out + done.err  # all deleted: all is well
        assert {(d["kind"], d["id"]) for d in report["deleted"]} == set(lost.items())
        assert all(d["error"] == "" for d in report["deleted"])
        existing = aws_existing()
        for kind, ident in lost.items():
            assert ident not in existing[kind], kind
        for kind, ident in kept.items():
            assert ident in existing[kind], kind  # the live run's resources are untouched
        again, report = _doctor(trainrig)
        assert again.code == 0 and report["leftovers"] == []
    finally:
        Journal(state_home).remove(known)


def test_a_destroyed_runs_resources_are_leftovers(trainrig, state_home):
    """`down` destroyed the stack, but an instance the stack never recorded still runs."""
    spec = build_spec(code=DIGITS, code_name="downed", dataset_name="t4", target="aws",
                      cloud=CloudOptions(accelerator="T4", region="us-east-1", ssh_from="203.0.113.7/32"))
    Journal(state_home).save(RunRecord(spec=spec, state="destroyed", stack_created=True))
    try:
        made = aws_run(spec.run_id)
        done, report = _doctor(trainrig)
        assert done.code == 1
        assert {f["id"] for f in report["leftovers"] if f["run_id"] == spec.run_id} == set(made.values())
    finally:
        Journal(state_home).remove(spec.run_id)


@pytest.mark.parametrize("args", [("--region", "mars-1"), ("--cloud", "gcp", "--region", "us-east-1"),
                                  ("--project", "X")])
def test_bad_places_are_one_sentence_and_exit_2(trainrig, args):
    done = trainrig("doctor", *args)
    assert done.code == 2, done.out + done.err
    assert done.err.startswith("error: ") and len(done.err.strip().splitlines()) == 1


def test_the_clock_check_is_skipped_with_its_reason_when_the_cloud_cannot_be_reached(trainrig, env):
    from tests.buckets import free_port

    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env["AWS_MAX_ATTEMPTS"] = "1"
    done, report = _doctor(trainrig)
    clock = next(c for c in report["checks"] if c["name"] == "clock aws")
    assert clock["status"] == "skipped" and env["AWS_ENDPOINT_URL"] in clock["detail"]
    assert done.code == 1 and report["errors"]  # and the unlistable cloud fails the doctor, never "all clear"


def test_gcs_buckets_labelled_as_a_runs_are_listed_from_the_emulator(trainrig, env):
    with gcs_emulator() as gcs:
        with environment(gcs):
            bucket = gcs_run_bucket("gone-l4", gcs["GOOGLE_CLOUD_PROJECT"])
        env.update(gcs)
        done = trainrig("doctor", "--cloud", "gcp", "--project", gcs["GOOGLE_CLOUD_PROJECT"], "--json")
        report = json.loads(done.out)
        assert done.code == 1
        assert [(f["kind"], f["id"], f["run_id"]) for f in report["leftovers"]] == [("bucket", bucket, "gone-l4")]
        assert report["skipped"] and report["errors"] == []  # compute and TPUs: no emulator, and it says so
        clean = trainrig("doctor", "--cloud", "gcp", "--project", gcs["GOOGLE_CLOUD_PROJECT"], "--clean", "--yes")
        assert clean.code == 0, clean.out + clean.err


def test_doctor_help_imports_no_cloud_sdk():
    code = ("import sys; sys.argv = ['trainrig', 'doctor', '--help']\n"
            "from tui import cli\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
            "('boto3', 'botocore', 'google', 'pulumi', 'asyncssh')}), file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "--clean" in p.stdout
    assert p.stderr.strip() == "[]"


def test_on_a_terminal_clean_asks_and_deletes_only_on_yes(trainrig, env, tmp_path):
    from tests.tui.test_down import _on_a_terminal

    lost = aws_run("asked-t4")
    args = ["doctor", "--cloud", "aws", "--region", "us-east-1", "--clean"]
    code, screen = _on_a_terminal(env, tmp_path, args, ["n"])
    assert code == 1, screen  # leftovers remain
    assert lost["instance"] in aws_existing()["instance"]
    code, screen = _on_a_terminal(env, tmp_path, args, ["y"])
    assert code == 0, screen
    existing = aws_existing()
    assert all(ident not in existing[kind] for kind, ident in lost.items())


def test_gcp_with_no_project_anywhere_says_it_was_not_searched(trainrig, env):
    with gcs_emulator() as gcs:
        env["STORAGE_EMULATOR_HOST"] = gcs["STORAGE_EMULATOR_HOST"]  # credentials, but no project set anywhere
        done = trainrig("doctor", "--cloud", "gcp", "--json")
    report = json.loads(done.out)
    assert {c["name"]: c["status"] for c in report["checks"]}["project gcp"] == "missing"
    assert report["places"]["gcp_projects"] == [] and report["leftovers"] == []
    assert done.code == 0  # nothing failed: it says what it could not do


def test_a_clock_minutes_off_the_clouds_fails_the_check(trainrig, env):
    """An endpoint whose Date header is 10 minutes ahead of this computer's clock, for real."""
    import threading
    import time
    from email.utils import formatdate
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ahead(BaseHTTPRequestHandler):
        def date_time_string(self, timestamp=None):  # type: ignore[no-untyped-def]
            return formatdate(time.time() + 600, usegmt=True)

        def do_HEAD(self) -> None:
            self.send_response(403)  # an error answer carries the Date too, as the clouds' do
            self.end_headers()

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ahead)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
        env["AWS_MAX_ATTEMPTS"] = "1"
        done, report = _doctor(trainrig)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert report is not None, done.err
    clock = next(c for c in report["checks"] if c["name"] == "clock aws")
    assert clock["status"] == "failed" and clock["fix"] == "sudo timedatectl set-ntp true"
    assert re.search(r"\b(599|600|601) s behind", clock["detail"]), clock  # the header has whole seconds
    assert done.code == 1
