"""A cloud run's stack config: written from the run spec, read back into the same spec, by trainrig
(from the YAML file) and by the Pulumi program (from Pulumi's config, where lists arrive as JSON)."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.cloud import CloudSpec
from infra.errors import BadInput
from infra.spec import EntryPoint, Launcher, OutputsFrom, RunSpec
from infra.stack_config import MachineKeys, config_path, from_config, read, to_config, write

KEYS = MachineKeys(ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE trainrig", host_key_file="/state/runs/x/host_key")


def gcp_spec(**over: object) -> RunSpec:
    base = dict(
        code_name="yolo", dataset_name="beer-v2", code_path="/home/me/yolo", entry=EntryPoint(module="trainer.main"),
        target="gcp", dataset="gs://team-data/beer", env=(("EPOCHS", "3"), ("NOTE", "a b: 'c'")),
        max_runtime_s=5400, sync_interval_s=45, install_script="install.sh",
        cloud=CloudSpec(accelerator="T4", count=2, zone="us-central1-a", region="us-central1", project="my-proj",
                        spot=True, disk_gb=250, ssh_from="203.0.113.7/32", any_zone=True),
    )
    base.update(over)
    return RunSpec(**base)  # type: ignore[arg-type]


def aws_spec() -> RunSpec:
    return gcp_spec(target="aws", dataset="s3://team-data/beer", entry=EntryPoint(command=("python", "train.py", "--lr", "0.1")),
                    env=(), install_script=None, output_store="s3://my-outputs/runs",
                    cloud=CloudSpec(accelerator="A10G", count=1, zone="us-east-1b", region="us-east-1", spot=False,
                                    disk_gb=200, ssh_from="198.51.100.0/24", image="Deep Learning Base*"))


def nodes_spec() -> RunSpec:
    return gcp_spec(nodes=3, launcher=Launcher.TORCHRUN, outputs_from=OutputsFrom.ALL)


SPECS = {"gcp": gcp_spec(), "aws": aws_spec(), "gcp-3-nodes": nodes_spec()}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_the_file_round_trip_gives_back_the_same_spec(tmp_path, spec):
    path = write(tmp_path, spec, KEYS)
    assert path == config_path(tmp_path, spec.run_id) == tmp_path / f"Pulumi.{spec.run_id}.yaml"
    back, keys = read(tmp_path, spec.run_id)
    assert back == spec
    assert keys == KEYS


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_the_program_reads_the_same_spec_from_pulumi_config_strings(spec):
    # Pulumi hands the program every value as text, structured ones as JSON.
    as_pulumi = {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in to_config(spec, KEYS).items()}
    back, keys = from_config(as_pulumi.get)
    assert back == spec
    assert keys == KEYS


def test_the_file_is_plain_pulumi_config_with_the_provider_keys(tmp_path):
    doc = yaml.safe_load(write(tmp_path, gcp_spec(), KEYS).read_text())
    config = doc["config"]
    assert config["trainrig:target"] == "gcp"
    assert config["trainrig:accelerator"] == "T4:2"
    assert config["trainrig:maxRuntime"] == "90m"
    assert config["gcp:project"] == "my-proj" and config["gcp:zone"] == "us-central1-a"
    assert all(k.split(":")[0] in ("trainrig", "gcp") for k in config)
    aws = yaml.safe_load(write(tmp_path / "other", aws_spec(), KEYS).read_text())["config"]
    assert aws["aws:region"] == "us-east-1" and aws["trainrig:availabilityZone"] == "us-east-1b"
    assert not any(k.startswith("gcp:") for k in aws)


def test_rewriting_keeps_what_pulumi_put_in_the_file(tmp_path):
    path = write(tmp_path, gcp_spec(), KEYS)
    doc = yaml.safe_load(path.read_text())
    doc["encryptionsalt"] = "v1:abc:def"
    doc["config"]["trainrig:somethingOld"] = "gone after a rewrite"
    doc["config"]["gcp:impersonateServiceAccount"] = "ops@my-proj.iam.gserviceaccount.com"
    path.write_text(yaml.safe_dump(doc))
    write(tmp_path, gcp_spec(max_runtime_s=7200), KEYS)
    again = yaml.safe_load(path.read_text())
    assert again["encryptionsalt"] == "v1:abc:def"
    assert again["config"]["gcp:impersonateServiceAccount"] == "ops@my-proj.iam.gserviceaccount.com"
    assert "trainrig:somethingOld" not in again["config"]
    assert again["config"]["trainrig:maxRuntime"] == "2h"


def test_switching_clouds_is_an_edit_of_the_target(tmp_path):
    spec = gcp_spec(dataset=None, env=())
    path = write(tmp_path, spec, KEYS)
    doc = yaml.safe_load(path.read_text())
    doc["config"]["trainrig:target"] = "aws"
    doc["config"]["aws:region"] = "eu-west-1"
    path.write_text(yaml.safe_dump(doc))
    back, _ = read(tmp_path, spec.run_id)
    assert back.target == "aws"
    assert back.cloud is not None and back.cloud.region == "eu-west-1" and back.cloud.zone is None
    assert back.cloud.accelerator == "T4" and back.cloud.count == 2  # the same accelerator, now on AWS


def test_a_spec_of_a_machine_without_a_stack_is_refused():
    with pytest.raises(BadInput, match="only gcp and aws runs have a Pulumi stack"):
        to_config(gcp_spec(target="local", cloud=None), KEYS)


def test_a_missing_key_or_a_renamed_run_is_named(tmp_path):
    spec = gcp_spec()
    path = write(tmp_path, spec, KEYS)
    doc = yaml.safe_load(path.read_text())
    del doc["config"]["trainrig:sshFrom"]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(BadInput, match="no trainrig:sshFrom"):
        read(tmp_path, spec.run_id)
    write(tmp_path, spec, KEYS)
    doc = yaml.safe_load(path.read_text())
    doc["config"]["trainrig:codeName"] = "other"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(BadInput, match="names run other-beer-v2"):
        read(tmp_path, spec.run_id)
    path.write_text("config: [unclosed")
    with pytest.raises(BadInput, match="not valid YAML"):
        read(tmp_path, spec.run_id)
    with pytest.raises(BadInput, match="there is no stack config"):
        read(tmp_path, "nope-none")


def test_switching_clouds_drops_the_first_cloud_image_and_switching_back_finds_it(tmp_path):
    from dataclasses import replace

    family = "common-cu129-ubuntu-2204-nvidia-580"
    spec = gcp_spec(dataset=None, env=())
    spec = replace(spec, cloud=replace(spec.cloud, image=family))
    path = write(tmp_path, spec, KEYS)
    doc = yaml.safe_load(path.read_text())
    assert doc["config"]["trainrig:gcpImage"] == family and "trainrig:image" not in doc["config"]
    doc["config"]["trainrig:target"] = "aws"
    doc["config"]["aws:region"] = "us-east-1"
    path.write_text(yaml.safe_dump(doc))
    on_aws, _ = read(tmp_path, spec.run_id)
    assert on_aws.cloud is not None and on_aws.cloud.image is None  # a GCP family is no AMI name pattern
    doc["config"]["trainrig:target"] = "gcp"
    path.write_text(yaml.safe_dump(doc))
    back, _ = read(tmp_path, spec.run_id)
    assert back.cloud is not None and back.cloud.image == family


def test_the_one_image_key_of_older_files_is_named_with_its_replacement(tmp_path):
    spec = gcp_spec()
    path = write(tmp_path, spec, KEYS)
    doc = yaml.safe_load(path.read_text())
    doc["config"]["trainrig:image"] = "common-cu129-ubuntu-2204-nvidia-580"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(BadInput, match=r"trainrig:image names no cloud: rename it to trainrig:gcpImage"):
        read(tmp_path, spec.run_id)


def test_nodes_launcher_and_outputs_from_are_written_only_when_not_the_default():
    one = to_config(gcp_spec(), KEYS)
    assert not {"trainrig:nodes", "trainrig:launcher", "trainrig:outputsFrom"} & set(one)  # a one-machine file as before
    several = to_config(nodes_spec(), KEYS)
    assert (several["trainrig:nodes"], several["trainrig:launcher"], several["trainrig:outputsFrom"]) == (3, "torchrun", "all")


@pytest.mark.parametrize("key,value", [("trainrig:nodes", 0), ("trainrig:launcher", "mpirun"), ("trainrig:outputsFrom", "rank1")])
def test_a_bad_multi_node_value_in_the_file_is_bad_input(tmp_path, key, value):
    spec = nodes_spec()
    path = write(tmp_path, spec, KEYS)
    doc = yaml.safe_load(path.read_text())
    doc["config"][key] = value
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(BadInput) as e:
        read(tmp_path, spec.run_id)
    assert e.value.exit_code == 2


def test_nodes_set_in_the_file_of_a_tpu_slice_run_are_refused_at_up(tmp_path):
    from pathlib import Path

    from infra.stack_config import spec_from_stack

    home = tmp_path / "home"
    spec = gcp_spec(code_path=str(Path(__file__).resolve().parents[2] / "examples" / "digits"), dataset=None,
                    nodes=2, cloud=CloudSpec(accelerator="v5litepod-16", zone="us-central1-a", region="us-central1",
                                             project="my-proj", ssh_from="203.0.113.7/32"))
    keys = MachineKeys(ssh_public_key=KEYS.ssh_public_key, host_key_file=str(home / "runs" / spec.run_id / "host_key"))
    write(tmp_path / "stacks", spec, keys)
    with pytest.raises(BadInput) as e:
        spec_from_stack(tmp_path / "stacks", spec.run_id, home)
    assert e.value.exit_code == 2 and "trainrig accelerators --cloud gcp" in str(e.value)
    write(tmp_path / "stacks", gcp_spec(code_path=spec.code_path, dataset=None, cloud=spec.cloud), keys)  # nodes 1
    assert spec_from_stack(tmp_path / "stacks", spec.run_id, home).cloud.accelerator == "v5litepod-16"  # type: ignore[union-attr]
