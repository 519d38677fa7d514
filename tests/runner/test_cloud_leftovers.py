"""Leftovers found by their labels/tags and deleted, against moto's EC2/IAM/S3 server and the GCS
emulator for real: resources of two runs made with no stack (as an interrupted `pulumi up` leaves
them); a sweep deletes one run's and leaves the other's; a cloud that cannot be asked is an error,
never an empty listing."""

from __future__ import annotations

import os

import pytest

from infra import catalog
from runner.leftovers import LeftoverError, Places, find, hourly_price, sweep_run
from tests.buckets import environment, gcs_emulator
from tests.runner.cloud_resources import aws_existing, aws_run, gcs_run_bucket, moto_server, reset

KINDS = {"instance", "security-group", "key-pair", "role", "instance-profile", "bucket", "vpc", "subnet",
         "internet-gateway", "route-table"}
HERE = Places(aws_regions=("us-east-1",))


@pytest.fixture(scope="module")
def moto_process():  # type: ignore[no-untyped-def]
    with moto_server() as env:
        yield env


@pytest.fixture
def moto(moto_process):  # type: ignore[no-untyped-def]
    reset(moto_process)
    with environment({**moto_process, "STORAGE_EMULATOR_HOST": ""}):
        yield moto_process


def _by_run(listing) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    out: dict[str, dict[str, str]] = {}
    for f in listing.leftovers:
        out.setdefault(f.run_id, {})[f.kind] = f.id
    return out


def test_every_resource_of_a_run_without_a_stack_is_found_by_its_tags_with_its_price(moto):
    a, b = aws_run("lost-t4"), aws_run("other-t4", instance_type="p3.2xlarge")
    untagged = moto  # a bucket of the user's own, named like ours but never tagged: not a leftover
    import boto3

    boto3.client("s3").create_bucket(Bucket="trainrig-users-own-bucket")
    listing = find(HERE, known=set())
    assert listing.errors == ()
    assert _by_run(listing) == {"lost-t4": a, "other-t4": b}
    assert untagged and all(f.id != "trainrig-users-own-bucket" for f in listing.leftovers)
    machine = next(f for f in listing.leftovers if f.kind == "instance" and f.run_id == "lost-t4")
    assert machine.hourly_usd == catalog.load().find("aws", "T4").machine(1).on_demand_usd_h  # g4dn.xlarge
    assert machine.where == "us-east-1" and machine.state == "running"
    assert 0 <= machine.age_s() < 600
    assert machine.delete_command.split()[:3] == ["aws", "ec2", "terminate-instances"]
    assert all(f.delete_command.startswith("aws ") for f in listing.leftovers)


def test_a_run_the_journal_knows_is_not_a_leftover(moto):
    aws_run("live-t4")
    lost = aws_run("gone-t4")
    listing = find(HERE, known={"live-t4"})
    assert _by_run(listing) == {"gone-t4": lost}


def test_downs_sweep_deletes_its_own_runs_leftovers_only(moto):
    mine, theirs = aws_run("mine-t4"), aws_run("theirs-t4")
    told = []
    done = sweep_run("aws", "mine-t4", "us-east-1", None, told.append)
    assert {d.leftover.kind for d in done} == KINDS and not any(d.error for d in done)
    assert told == done
    existing = aws_existing()
    for kind in KINDS:
        assert mine[kind] not in existing[kind], kind
        assert theirs[kind] in existing[kind], kind
    # Swept again (the next `down`): nothing left, nothing to fail on.
    assert sweep_run("aws", "mine-t4", "us-east-1", None) == []
    assert _by_run(find(HERE, known=set())) == {"theirs-t4": theirs}


def test_a_cloud_that_cannot_be_asked_is_an_error_never_an_empty_listing(moto):
    from tests.buckets import free_port

    aws_run("unseen-t4")
    # Nothing listens there: the listing must fail, not report "nothing left".
    with environment({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_MAX_ATTEMPTS": "1"}):
        listing = find(HERE, known=set())
        assert listing.leftovers == ()
        assert {e.split(":")[0] for e in listing.errors} == {"aws us-east-1", "aws iam", "aws s3"}
        with pytest.raises(LeftoverError) as e:
            sweep_run("aws", "unseen-t4", "us-east-1", None)
        assert "trainrig down unseen-t4" in str(e.value)
    assert "unseen-t4" in _by_run(find(HERE, known=set()))  # untouched


def test_a_gcs_bucket_labelled_as_a_runs_is_found_and_swept_with_its_objects():
    with gcs_emulator() as env, environment({**env, "AWS_ENDPOINT_URL": ""}):
        project = env["GOOGLE_CLOUD_PROJECT"]
        mine, theirs = gcs_run_bucket("mine-l4", project), gcs_run_bucket("theirs-l4", project)
        listing = find(Places(gcp_projects=(project,)), known={"theirs-l4"})
        assert [(f.kind, f.id, f.run_id) for f in listing.leftovers] == [("bucket", mine, "mine-l4")]
        assert listing.errors == ()
        assert any("no Compute emulator" in s for s in listing.skipped)  # what was not asked is said
        assert listing.leftovers[0].delete_command.startswith("gcloud storage rm --recursive gs://")
        done = sweep_run("gcp", "mine-l4", None, project)
        assert [d.leftover.id for d in done] == [mine] and not done[0].error
        left = find(Places(gcp_projects=(project,)), known=set())
        assert [f.id for f in left.leftovers] == [theirs]


def test_gcp_guest_gpus_are_priced_by_accelerator_not_only_machine_type():
    t4 = hourly_price("gcp", "n1-standard-8", "nvidia-tesla-t4", 1)
    v100 = hourly_price("gcp", "n1-standard-8", "nvidia-tesla-v100", 1)
    assert t4 == catalog.load().find("gcp", "T4").machine(1).on_demand_usd_h
    assert v100 == catalog.load().find("gcp", "V100").machine(1).on_demand_usd_h and v100 != t4
    assert hourly_price("gcp", "v5litepod-8") == catalog.load().find("gcp", "v5litepod-8").machine(1).on_demand_usd_h
    assert hourly_price("aws", "g4dn.xlarge", spot=True) == catalog.load().find("aws", "T4").machine(1).spot_usd_h
    assert hourly_price("aws", "m5.large") is None  # not a catalog machine: not priced, never guessed


def test_gcp_without_credentials_is_an_error_for_each_part_never_an_empty_listing(tmp_path):
    """The real Compute, TPU and Storage clients, imported and asked: each one's failure is said."""
    quiet = {"STORAGE_EMULATOR_HOST": "", "GOOGLE_APPLICATION_CREDENTIALS": "", "CLOUDSDK_CONFIG": str(tmp_path),
             "NO_GCE_CHECK": "true"}  # no metadata server is asked (not on GCE)
    with environment(quiet):
        os.environ.pop("STORAGE_EMULATOR_HOST")
        os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS")
        listing = find(Places(gcp_projects=("trainrig-nowhere",)), known=set())
    assert listing.leftovers == ()
    assert [e.split(":")[0] for e in listing.errors] == [
        "gcp trainrig-nowhere buckets", "gcp trainrig-nowhere instances and disks", "gcp trainrig-nowhere TPU VMs",
        "gcp trainrig-nowhere networks and firewall rules"]


@pytest.mark.parametrize("kind", ["gpu", "tpu"])
def test_a_gcp_stacks_unlabelled_network_pieces_are_known_by_name_and_description(kind):
    """Firewall rules, networks and subnetworks take no labels: the sweep knows them by the names and
    descriptions the components give them (declared under Pulumi's mocks; the cloud name is the
    logical one plus Pulumi's 7-character suffix)."""
    from infra.components.gcp_gpu_machine import GcpGpuMachine
    from infra.components.gcp_tpu_machine import GcpTpuMachine
    from runner.leftovers_gcp import _described_run
    from tests.infra.components.harness import GCP_T4, GCP_TPU, deploy, make_inputs

    make = (lambda: GcpGpuMachine("yolo-coco", make_inputs(GCP_T4))) if kind == "gpu" else (
        lambda: GcpTpuMachine("yolo-coco", make_inputs(GCP_TPU)))
    pieces = [d for d in deploy(make).declared if d.type in (
        "gcp:compute/firewall:Firewall", "gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork")]
    assert pieces
    for d in pieces:
        cloud_name = d.plain.get("name") or f"{d.name}-1a2b3c4"
        assert _described_run(cloud_name, d.plain.get("description", ""), None) == "yolo-coco", d.name
        assert _described_run(cloud_name, d.plain.get("description", ""), "yolo") is None  # another run's: never


def test_the_sweep_down_runs_after_pulumi_destroy_finds_the_run_from_its_record(moto):
    """runner/targets/cloud.py's step after `pulumi destroy`: the run's place comes from its record,
    and each resource deleted is told as a Notice."""
    from pathlib import Path

    from infra.cloud import CloudOptions
    from infra.spec import build_spec
    from runner.events import Notice
    from runner.journal import RunRecord
    from runner.targets.cloud import sweep

    spec = build_spec(code=str(Path(__file__).resolve().parents[2] / "examples" / "digits"), code_name="swept",
                      dataset_name="t4", target="aws",
                      cloud=CloudOptions(accelerator="T4", region="us-east-1", ssh_from="203.0.113.7/32"))
    mine, theirs = aws_run(spec.run_id), aws_run("kept-t4")
    events: list = []
    sweep(RunRecord(spec=spec, state="destroying", stack_created=True), events.append)
    assert all(isinstance(e, Notice) for e in events) and len(events) == len(mine)
    assert all(spec.run_id in e.text and e.text.endswith("deleted") for e in events)
    assert _by_run(find(HERE, known=set())) == {"kept-t4": theirs}
