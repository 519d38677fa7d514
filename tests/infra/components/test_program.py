"""The program: the component each offer calls for, the stack outputs the runner reads, and each
cloud's SDK loaded only by its own stacks."""

import subprocess
import sys
from dataclasses import replace

import pulumi
import pytest

from infra import program
from infra.errors import BadInput
from tests.infra.components.harness import AWS_T4, GCP_T4, GCP_TPU, ROOT_DIR, deploy, make_inputs

CONTRACT = {"address", "sshUser", "hostKey", "outputBucket", "hourlyPrice"}


@pytest.fixture
def exported(monkeypatch):
    names: dict[str, object] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: names.__setitem__(name, value))
    return names


@pytest.mark.parametrize(
    "offer,component",
    [
        (GCP_T4, "trainrig:gcp:GpuMachine"),
        (GCP_TPU, "trainrig:gcp:TpuMachine"),
        (AWS_T4, "trainrig:aws:GpuMachine"),
    ],
)
def test_build_picks_the_component_and_exports_the_contract(offer, component, exported):
    stack = deploy(lambda: program.build(make_inputs(offer)))
    assert [d.type for d in stack.declared if d.type.startswith("trainrig:") and "Machine" in d.type] == [
        component
    ]
    assert set(exported) == CONTRACT
    assert all(isinstance(value, pulumi.Output) for value in exported.values())


def test_an_offer_no_component_serves_is_refused():
    with pytest.raises(BadInput, match="no tpu machine on aws"):
        program.build(make_inputs(replace(AWS_T4, kind="tpu")))


@pytest.mark.parametrize(
    "module,absent",
    [
        ("infra.program", "pulumi_gcp"),
        ("infra.program", "pulumi_aws"),
        ("infra.components.gcp_gpu_machine", "pulumi_aws"),
        ("infra.components.gcp_tpu_machine", "pulumi_aws"),
        ("infra.components.aws_gpu_machine", "pulumi_gcp"),
    ],
)
def test_importing_one_cloud_never_imports_the_other(module, absent):
    code = f"import sys, {module}; sys.exit({absent!r} in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT_DIR, check=False).returncode == 0


def test_the_import_check_sees_a_loaded_sdk():
    code = "import sys, infra.components.aws_gpu_machine; sys.exit('pulumi_aws' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT_DIR, check=False).returncode == 1
