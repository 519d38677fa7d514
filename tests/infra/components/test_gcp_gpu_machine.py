"""The GCP GPU VM component under Pulumi's mocks: what it declares, with which inputs, and its outputs."""

import re

import pytest

from infra.components.gcp_access import service_account_id
from infra.components.gcp_gpu_machine import GcpGpuMachine
from tests.infra.components.harness import (
    CLIENT_KEY,
    GCP_A100,
    GCP_T4,
    GCP_VM_IP,
    HOST_KEY,
    Deployment,
    deploy,
    is_secret,
    make_inputs,
)

INSTANCE = "gcp:compute/instance:Instance"
BUCKET = "gcp:storage/bucket:Bucket"
MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
NETWORK = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
SA_EMAIL = "tr-yolo-coco-edfc3b@my-project.iam.gserviceaccount.com"


def gpu_vm(offer=GCP_T4, **changes) -> Deployment:
    return deploy(lambda: GcpGpuMachine("yolo-coco", make_inputs(offer, **changes)))


@pytest.fixture(scope="module")
def t4() -> Deployment:
    return gpu_vm()


def test_declares_the_vm_its_firewall_bucket_account_and_bucket_rights(t4):
    assert sorted(d.type for d in t4.declared) == sorted(
        [
            "trainrig:gcp:GpuMachine",
            "trainrig:gcp:Access",
            "gcp:compute/firewall:Firewall",
            NETWORK,
            SUBNET,
            ACCOUNT,
            BUCKET,
            MEMBER,
            MEMBER,
            INSTANCE,
        ]
    )


def test_every_child_belongs_to_the_component(t4):
    children = [urn for urn in t4.urns if "::pulumi:pulumi:Stack$" not in urn]
    assert len(children) == 9 and all(
        "::trainrig:gcp:GpuMachine$" in u or "::trainrig:gcp:Access$" in u for u in children
    )


def test_vm_has_its_zone_machine_type_and_guest_gpus(t4):
    vm = t4.one(INSTANCE).plain
    assert vm["zone"] == "us-central1-a"
    assert vm["machineType"] == "n1-standard-8"
    assert vm["guestAccelerators"] == [{"type": "nvidia-tesla-t4", "count": 2}]


def test_a2_machine_brings_its_own_gpu():
    vm = gpu_vm(GCP_A100).one(INSTANCE).plain
    assert vm["machineType"] == "a2-highgpu-1g"
    assert "guestAccelerators" not in vm


def test_on_demand_vm_stops_for_maintenance_never_restarts_and_stops_at_the_failsafe(t4):
    # make_inputs keeps StackInputs' default failsafe: 13 hours.
    assert t4.one(INSTANCE).plain["scheduling"] == {
        "onHostMaintenance": "TERMINATE",
        "automaticRestart": False,
        "instanceTerminationAction": "STOP",
        "maxRunDuration": {"seconds": (13 + 5) * 3600},  # + room for a start hours after up
    }


def test_spot_vm_is_stopped_when_preempted():
    assert gpu_vm(spot=True).one(INSTANCE).plain["scheduling"] == {
        "onHostMaintenance": "TERMINATE",
        "automaticRestart": False,
        "provisioningModel": "SPOT",
        "preemptible": True,
        "instanceTerminationAction": "STOP",
        "maxRunDuration": {"seconds": (13 + 5) * 3600},
    }


def test_boot_disk_is_the_deep_learning_image_family_of_the_asked_size(t4):
    params = t4.one(INSTANCE).plain["bootDisk"]["initializeParams"]
    assert (
        params["image"]
        == "projects/deeplearning-platform-release/global/images/family/common-cu124-debian-11-py310"
    )
    assert params["size"] == 150
    assert params["type"] == "pd-balanced"


def test_image_override_replaces_the_catalog_family():
    params = gpu_vm(image="pytorch-2-4-cu124-ubuntu-2204").one(INSTANCE).plain["bootDisk"]["initializeParams"]
    assert params["image"].endswith("/family/pytorch-2-4-cu124-ubuntu-2204")


def test_vm_has_a_public_ip_on_the_run_own_network_and_the_run_tag(t4):
    vm = t4.one(INSTANCE).plain
    network, subnet = t4.one(NETWORK), t4.one(SUBNET)
    assert vm["networkInterfaces"] == [{"network": network.id, "subnetwork": subnet.id, "accessConfigs": [{}]}]
    assert vm["tags"] == ["trainrig-yolo-coco"]


def test_the_run_network_has_one_subnet_in_the_machine_region_and_holds_the_ssh_rule_alone(t4):
    network, subnet = t4.one(NETWORK), t4.one(SUBNET)
    assert network.plain["autoCreateSubnetworks"] is False  # no subnets (and no open rules) elsewhere
    assert (subnet.plain["network"], subnet.plain["region"]) == (network.id, "us-central1")
    assert [f.plain["network"] for f in t4.of_type("gcp:compute/firewall:Firewall")] == [network.id]


def test_a3_vm_uses_gvnic_and_older_series_the_default_nic(t4):
    from dataclasses import replace

    a3 = gpu_vm(replace(GCP_A100, accelerator="H100", count=8, machine_type="a3-highgpu-8g"))
    assert a3.one(INSTANCE).plain["networkInterfaces"][0]["nicType"] == "GVNIC"
    assert "nicType" not in t4.one(INSTANCE).plain["networkInterfaces"][0]
    assert "nicType" not in gpu_vm(GCP_A100).one(INSTANCE).plain["networkInterfaces"][0]


def test_startup_script_installs_python3_venv_before_the_run_host_key(t4):
    script = t4.one(INSTANCE).plain["metadata"]["startup-script"]
    assert script.index("install -y python3-venv") < script.index("ssh_host_ed25519_key")


def test_metadata_lets_in_the_run_key_only_and_is_secret(t4):
    vm = t4.one(INSTANCE)
    assert is_secret(vm.inputs["metadata"])  # the startup script holds the private host key
    metadata = vm.plain["metadata"]
    assert metadata["ssh-keys"] == f"trainrig:{CLIENT_KEY}"
    assert metadata["block-project-ssh-keys"] == "TRUE"
    assert metadata["enable-oslogin"] == "FALSE"
    assert metadata["install-nvidia-driver"] == "True"
    assert HOST_KEY.private_openssh.strip() in metadata["startup-script"]
    assert "shutdown -h +780" in metadata["startup-script"]


def test_vm_runs_as_the_run_service_account(t4):
    assert t4.one(INSTANCE).plain["serviceAccount"] == {
        "email": SA_EMAIL,
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
    }
    assert t4.one(ACCOUNT).plain["accountId"] == "tr-yolo-coco-edfc3b"


def test_account_reads_the_dataset_and_writes_the_output_bucket(t4):
    rights = {(m.plain["bucket"], m.plain["role"], m.plain["member"]) for m in t4.of_type(MEMBER)}
    assert rights == {
        ("team-datasets", "roles/storage.objectViewer", f"serviceAccount:{SA_EMAIL}"),
        ("trainrig-yolo-coco-a1b2c3d", "roles/storage.objectAdmin", f"serviceAccount:{SA_EMAIL}"),
    }


def test_output_bucket_is_private_in_the_machine_region(t4):
    bucket = t4.one(BUCKET).plain
    assert bucket["location"] == "US-CENTRAL1"
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["forceDestroy"] is True
    assert bucket["softDeletePolicy"] == {"retentionDurationSeconds": 0}  # overwritten checkpoints are not kept


def test_user_bucket_replaces_the_stack_bucket_and_no_dataset_means_no_read_right():
    stack = gpu_vm(output_store_bucket="my-outputs", dataset_bucket=None)
    assert stack.of_type(BUCKET) == []
    assert [(m.plain["bucket"], m.plain["role"]) for m in stack.of_type(MEMBER)] == [
        ("my-outputs", "roles/storage.objectAdmin"),
    ]
    assert stack.outputs["output_bucket"] == "my-outputs"


def test_outputs_tell_how_to_reach_the_machine(t4):
    assert t4.outputs == {
        "address": GCP_VM_IP,
        "ssh_user": "trainrig",
        "host_key": HOST_KEY.public_openssh,
        "output_bucket": "trainrig-yolo-coco-a1b2c3d",
        "hourly_price": 1.08,
    }


@pytest.mark.parametrize(
    "run_id", ["a-b", "yolo-coco", "x" * 40, "abcdefghijklmnopqrs-tuvwxyz0123456789", "r" * 19 + "-x"]
)
def test_service_account_id_is_always_valid(run_id):
    account_id = service_account_id(run_id)
    assert 6 <= len(account_id) <= 30
    assert re.fullmatch(r"[a-z][-a-z0-9]*[a-z0-9]", account_id), account_id
    assert "--" not in account_id


def test_runs_that_share_a_long_prefix_get_different_accounts():
    assert service_account_id("a" * 30 + "-coco") != service_account_id("a" * 30 + "-mnist")


@pytest.mark.parametrize("run", ["google-bert-squad", "g00gle-x", "goog1e-x", "gogle-x", "googel-x", "my-g0ogle"])
def test_a_run_named_after_google_or_a_misspelling_gets_a_neutral_bucket_name(run):
    from infra.components.gcp_access import bucket_logical_name, looks_like_google

    name = bucket_logical_name(f"trainrig-{run}")
    assert not looks_like_google(name) and re.fullmatch(r"trainrig-r[0-9a-f]{12}", name)
    assert bucket_logical_name(f"trainrig-{run}") == name  # the same run always gets the same name
    assert bucket_logical_name("trainrig-yolo-coco") == "trainrig-yolo-coco"
