"""Several machines on a cloud: `--nodes N` of GPU machines is a spec like any other; a TPU pod slice is
already several hosts, so `--nodes` with a TPU is bad input (exit 2, nothing written), and the hint it
prints (`trainrig accelerators --cloud gcp`) lists the slices with their hosts."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from infra.cloud import CloudOptions
from infra.errors import BadInput
from infra.project import find_project, stacks_dir
from infra.spec import build_spec

DIGITS = str(Path(__file__).resolve().parents[2] / "examples" / "digits")
GCP = {"project": "p", "zone": None, "ssh_from": "203.0.113.7/32"}


def spec(accelerator: str, nodes: int):  # type: ignore[no-untyped-def]
    return build_spec(code=DIGITS, code_name="digits", dataset_name="x", target="gcp", nodes=nodes,
                      cloud=CloudOptions(accelerator=accelerator, **GCP))  # type: ignore[arg-type]


def test_gpu_nodes_and_a_pod_slice_alone_are_specs():
    assert spec("T4:2", 3).nodes == 3
    pod = spec("v5litepod-16", 1)
    assert pod.nodes == 1 and pod.cloud is not None and pod.cloud.accelerator == "v5litepod-16"


@pytest.mark.parametrize("accelerator", ["v5litepod-16", "v4-8"])
def test_nodes_with_a_tpu_are_bad_input(accelerator):
    with pytest.raises(BadInput) as e:
        spec(accelerator, 2)
    assert e.value.exit_code == 2 and "\n" not in str(e.value) and "trainrig accelerators --cloud gcp" in str(e.value)


@pytest.fixture
def env(env, tmp_path):  # type: ignore[no-untyped-def]
    """No Pulumi CLI, no cloud defaults or credentials from the developer's own configuration."""
    env = dict(env)
    env["PATH"] = os.path.dirname(sys.executable) + ":/usr/bin:/bin"
    env["HOME"] = str(tmp_path / "home")
    env["CLOUDSDK_CONFIG"] = str(tmp_path / "gcloud")
    for var in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "CLOUDSDK_COMPUTE_ZONE"):
        env.pop(var, None)
    return env


def test_the_cli_refuses_nodes_on_a_slice_before_anything_and_its_hint_lists_the_hosts(trainrig, env, state_home):
    stacks = stacks_dir(find_project())  # type: ignore[arg-type]
    before = set(stacks.glob("Pulumi.*.yaml"))
    done = trainrig("up", DIGITS, "--code-name", "podnodes", "--dataset-name", "x", "--target", "gcp", "--project", "p",
                    "--ssh-from", "203.0.113.7/32", "--accelerator", "v4-16", "--nodes", "2")
    assert done.code == 2, (done.out, done.err)
    assert not (state_home / "runs" / "podnodes-x").exists() and set(stacks.glob("Pulumi.*.yaml")) == before
    hint = re.search(r"`(trainrig [^`]+)`", done.err)
    assert hint is not None, done.err
    listed = trainrig(*hint.group(1).split()[1:])  # the hint, as printed
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    column = lines[0].index("HOSTS")
    row = next(line for line in lines if line.split()[1:2] == ["v4-16"])
    assert row[column:].split()[0] == "2"
