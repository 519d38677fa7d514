"""`trainrig up/run --target gcp|aws` on this computer, which has no Pulumi CLI and no cloud account:
every bad option is refused with one sentence and exit code 2 before anything is written, and a good
one stops at the missing Pulumi CLI, leaving nothing behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from infra.project import find_project, stacks_dir
from runner.journal import Journal, RunRecord
from infra.engine_outputs import StackOutputs
from infra.spec import build_spec

DIGITS = str(Path(__file__).resolve().parents[2] / "examples" / "digits")
STACKS = stacks_dir(find_project())  # type: ignore[arg-type]


@pytest.fixture
def env(env, tmp_path):  # type: ignore[no-untyped-def]
    """(Overrides conftest's, so the `trainrig` fixture runs with it.) No Pulumi CLI, no cloud
    defaults or credentials from the developer's own configuration."""
    env = dict(env)
    env["PATH"] = os.path.dirname(sys.executable) + ":/usr/bin:/bin"
    env["HOME"] = str(tmp_path / "home")
    env["CLOUDSDK_CONFIG"] = str(tmp_path / "gcloud")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "aws-config")
    for var in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "CLOUDSDK_COMPUTE_ZONE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        env.pop(var, None)
    return env


@pytest.fixture
def cli(trainrig, env):  # type: ignore[no-untyped-def]
    assert env["HOME"].endswith("home")  # the override above is in force
    return trainrig


def _refused(done, *words: str) -> str:  # type: ignore[no-untyped-def]
    assert done.code == 2, (done.out, done.err)
    text = done.out + done.err
    lines = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, text
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


GCP = ["--target", "gcp", "--project", "my-proj", "--ssh-from", "203.0.113.7/32"]


@pytest.mark.parametrize("args, words", [
    (["--target", "gcp", "--project", "p"], ["needs --accelerator", "trainrig accelerators"]),
    (["--target", "gcp", "--accelerator", "T4"], ["no GCP project", "--project"]),
    (["--target", "aws", "--accelerator", "A10G"], ["AWS_REGION", "--region"]),
    ([*GCP, "--accelerator", "A10G"], ["aws", "gcp"]),
    (["--target", "aws", "--region", "us-east-1", "--accelerator", "v5litepod-8"], ["gcp only"]),
    ([*GCP, "--accelerator", "T4:3"], ["1, 2", "4"]),
    ([*GCP, "--accelerator", "T4", "--zone", "antarctica-south1-a"], ["us-central1-a"]),
    (["--target", "gcp", "--project", "p", "--accelerator", "T4", "--ssh-from", "0.0.0.0/0"], ["--ssh-from anywhere"]),
    (["--target", "gcp", "--project", "p", "--accelerator", "T4", "--ssh-from", "my house"], ["not an address range"]),
    ([*GCP, "--accelerator", "T4", "--disk-gb", "10"], ["at least 50"]),
    ([*GCP, "--accelerator", "T4", "--dataset", "s3://data/beer", "--dataset-name", "beer"], ["gs://", "no credentials are copied"]),
    (["--accelerator", "T4", "--spot"], ["--accelerator, --spot only apply to --target gcp or aws"]),
    (["--target", "aws", "--region", "us-east-1", "--accelerator", "A10G", "--any-zone"], ["--any-zone is for --target gcp"]),
])
def test_bad_cloud_options_are_refused_before_anything(cli, state_home, args, words):
    before = set(os.listdir(state_home / "runs")) if (state_home / "runs").is_dir() else set()
    stacks_before = set(STACKS.glob("Pulumi.*.yaml"))
    _refused(cli("up", DIGITS, "--dataset-name", "x", *args), *words)
    after = set(os.listdir(state_home / "runs")) if (state_home / "runs").is_dir() else set()
    assert after == before
    assert set(STACKS.glob("Pulumi.*.yaml")) == stacks_before


def test_a_good_cloud_run_stops_at_the_missing_pulumi_cli_and_leaves_nothing(cli, state_home):
    done = cli("run", DIGITS, "--code-name", "nocli", "--dataset-name", "t4", *GCP, "--accelerator", "T4:2", "--spot")
    _refused(done, "Pulumi CLI is not installed", "get.pulumi.com")
    assert not (state_home / "runs" / "nocli-t4").exists()
    assert not (STACKS / "Pulumi.nocli-t4.yaml").exists()
    done = cli("up", DIGITS, "--code-name", "nocli", "--dataset-name", "a10g", "--target", "aws", "--region", "us-east-1",
               "--accelerator", "A10G", "--ssh-from", "198.51.100.0/24")
    _refused(done, "Pulumi CLI is not installed")


def test_the_catalog_is_printed(cli):
    done = cli("accelerators", "--cloud", "aws")
    assert done.code == 0, done.err
    assert "A10G" in done.out and "g5.xlarge" in done.out and "nvidia-tesla-t4" not in done.out
    assert "not fetched live" in done.out


def test_a_run_is_provisioned_again_from_its_edited_stack_config(cli, state_home):
    from infra.cloud import CloudOptions
    from infra.stack_config import MachineKeys, write

    spec = build_spec(code=DIGITS, code_name="fromstack", dataset_name="edit", target="gcp",
                      cloud=CloudOptions(accelerator="T4", project="p", ssh_from="203.0.113.7/32"))
    path = write(STACKS, spec, MachineKeys("ssh-ed25519 AAAA", str(Journal(state_home).key_path(spec.run_id, "host_key"))))
    try:
        doc = yaml.safe_load(path.read_text())
        doc["config"]["trainrig:target"] = "aws"
        doc["config"]["trainrig:accelerator"] = "A10G:1"
        path.write_text(yaml.safe_dump(doc))
        _refused(cli("up", "fromstack-edit"), "AWS_REGION")  # the edit is read: now an aws run, without a region
        doc["config"]["aws:region"] = "us-west-2"
        path.write_text(yaml.safe_dump(doc))
        _refused(cli("up", "fromstack-edit"), "Pulumi CLI is not installed")  # valid: on to the engine
        _refused(cli("up", "fromstack-edit", "--spot"), f"edit {path} instead of passing --spot")
        _refused(cli("up", "fromstack-edit", "--max-runtime", "3h"), f"edit {path} instead of passing --max-runtime")
        assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds --env values
    finally:
        path.unlink()


def test_a_stack_config_written_by_another_trainrig_home_is_never_taken(cli, state_home, tmp_path):
    from infra.cloud import CloudOptions
    from infra.stack_config import MachineKeys, write

    spec = build_spec(code=DIGITS, code_name="otherhome", dataset_name="t4", target="gcp",
                      cloud=CloudOptions(accelerator="T4", project="p", ssh_from="203.0.113.7/32"))
    other = tmp_path / "other-home"
    path = write(STACKS, spec, MachineKeys("ssh-ed25519 AAAA", str(Journal(other).key_path(spec.run_id, "host_key"))))
    try:
        line = _refused(cli("up", "otherhome-t4"), "another", f"TRAINRIG_HOME={other} trainrig up otherhome-t4")
        assert str(state_home) in line
        assert not (state_home / "runs" / "otherhome-t4").exists()
    finally:
        path.unlink()


def test_down_keeps_a_cloud_run_whose_outputs_were_never_downloaded(cli, state_home):
    from infra.cloud import CloudOptions

    spec = build_spec(code=DIGITS, code_name="keepout", dataset_name="t4", target="gcp",
                      cloud=CloudOptions(accelerator="T4", project="p", ssh_from="203.0.113.7/32"))
    journal = Journal(state_home)
    # A copy taken while it trained does not count: the final outputs came after it.
    journal.save(RunRecord(spec=spec, state="finished", downloads=["outputs/20261122T100000Z_keepout_t4"],
                           stack=StackOutputs("203.0.113.50", "trainrig", "ssh-ed25519 AAAA", "keepout-t4-outputs-1a2b", 0.73),
                           stack_created=True))
    try:
        _refused(cli("down", "keepout-t4", "--yes"), "trainrig download keepout-t4", "--discard-outputs")
        assert journal.load("keepout-t4").state == "finished"
        # Asked for by name, down goes on to the engine (which this computer does not have).
        _refused(cli("down", "keepout-t4", "--yes", "--discard-outputs"), "Pulumi CLI is not installed")
    finally:
        journal.remove("keepout-t4")


def test_a_run_that_never_made_its_stack_never_destroys_one_of_that_name(cli, state_home):
    """E.g. `up` refused because a stack of the same name existed (made elsewhere): its clean-up, and a
    later `down`, must leave that stack alone, so they do not even call Pulumi."""
    from infra.cloud import CloudOptions

    spec = build_spec(code=DIGITS, code_name="notmine", dataset_name="t4", target="gcp",
                      cloud=CloudOptions(accelerator="T4", project="p", ssh_from="203.0.113.7/32"))
    journal = Journal(state_home)
    journal.save(RunRecord(spec=spec, state="provisioning"))
    try:
        done = cli("down", "notmine-t4", "--yes")
        assert done.code == 0, done.out + done.err
        assert "Pulumi" not in done.out + done.err  # no engine was needed, none was called
        assert journal.load("notmine-t4").state == "destroyed"
    finally:
        journal.remove("notmine-t4")


def test_ls_asks_the_backend_only_when_told(cli):
    assert cli("ls").code == 0  # the journal alone: no Pulumi needed
    done = cli("ls", "--stacks")
    _refused(done, "Pulumi CLI is not installed")
    assert done.out.startswith("RUN")  # the journal's runs were shown before the backend was asked
