"""The GCP TPU VM component under Pulumi's mocks."""

from dataclasses import replace

import pytest

from infra.components.gcp_tpu_machine import GcpTpuMachine
from infra.errors import BadInput
from tests.infra.components.harness import (
    CLIENT_KEY,
    GCP_TPU,
    HOST_KEY,
    TPU_IP,
    Deployment,
    deploy,
    is_secret,
    make_inputs,
)

TPU = "gcp:tpu/v2Vm:V2Vm"


def tpu_vm(offer=GCP_TPU, **changes) -> Deployment:
    return deploy(lambda: GcpTpuMachine("yolo-coco", make_inputs(offer, **changes)))


@pytest.fixture(scope="module")
def tpu() -> Deployment:
    return tpu_vm()


def test_declares_a_tpu_vm_with_the_shared_access_pieces_and_no_compute_instance(tpu):
    types = [d.type for d in tpu.declared]
    assert types.count(TPU) == 1
    assert "gcp:compute/instance:Instance" not in types
    assert {
        "gcp:compute/firewall:Firewall",
        "gcp:serviceaccount/account:Account",
        "gcp:storage/bucket:Bucket",
    } <= set(types)


def test_tpu_has_its_type_runtime_zone_and_external_ip(tpu):
    vm = tpu.one(TPU).plain
    assert vm["acceleratorType"] == "v5litepod-8"
    assert vm["runtimeVersion"] == "v2-alpha-tpuv5-lite"
    assert vm["zone"] == "us-west4-a"
    network, subnet = tpu.one("gcp:compute/network:Network"), tpu.one("gcp:compute/subnetwork:Subnetwork")
    assert vm["networkConfig"] == {"network": network.id, "subnetwork": subnet.id, "enableExternalIps": True}
    assert subnet.plain["region"] == "us-west4"
    assert vm["tags"] == ["trainrig-yolo-coco"]
    assert "schedulingConfig" not in vm


def test_spot_tpu_asks_for_spot_capacity():
    assert tpu_vm(spot=True).one(TPU).plain["schedulingConfig"] == {"spot": True}


def test_tpu_metadata_lets_in_the_run_key_only_and_is_secret(tpu):
    vm = tpu.one(TPU)
    assert is_secret(vm.inputs["metadata"])
    metadata = vm.plain["metadata"]
    assert metadata["ssh-keys"] == f"trainrig:{CLIENT_KEY}"
    assert metadata["block-project-ssh-keys"] == "TRUE"
    assert metadata["enable-oslogin"] == "FALSE"
    assert HOST_KEY.private_openssh.strip() in metadata["startup-script"]
    assert "install-nvidia-driver" not in metadata


def test_tpu_runs_as_the_run_service_account(tpu):
    assert tpu.one(TPU).plain["serviceAccount"]["email"].startswith("tr-yolo-coco-")


def test_outputs_tell_how_to_reach_worker_zero(tpu):
    assert tpu.outputs == {
        "address": TPU_IP,
        "ssh_user": "trainrig",
        "host_key": HOST_KEY.public_openssh,
        "output_bucket": "trainrig-yolo-coco-a1b2c3d",
        "hourly_price": 9.6,
    }


def test_a_tpu_offer_without_runtime_is_refused():
    with pytest.raises(BadInput, match="runtime"):
        tpu_vm(replace(GCP_TPU, tpu_runtime=None))
