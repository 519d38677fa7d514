"""Run a component under Pulumi's mocks and keep what it declared: every resource with its type,
name, id and inputs (secrets still marked), and the machine's outputs."""

from __future__ import annotations

import asyncio

import copy
import gc
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from infra import catalog
from infra.catalog import Offer
from infra.stack_inputs import HostKey, StackInputs

ROOT_DIR = Path(__file__).resolve().parents[3]
MACHINE_OUTPUTS = ("address", "ssh_user", "host_key", "output_bucket", "hourly_price")
GCP_VM_IP, TPU_IP, AWS_IP = "203.0.113.10", "203.0.113.20", "203.0.113.30"
FAKE_AMI = "ami-0123456789abcdef0"
AMI_SNAPSHOT_GB = 75  # the fake AMI's root snapshot: a smaller --disk-gb is refused
OFFERED_ZONE_LETTERS = "dab"  # the fake EC2 sells every type in these zones of any region (in this order)

# Not a usable key: its body is a marker the secrecy checks look for.
PRIVATE_KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAAHOSTKEYPRIVATEPARTmustStaySecret0123456789"
HOST_KEY = HostKey(
    private_openssh=f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PRIVATE_KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n",
    public_openssh="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyPublicHalf trainrig-host",
)
CLIENT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClientKeyOfTheRun trainrig-client"

_PRICES = {"price_source": "test", "price_date": "2025-01-01"}
GCP_T4 = Offer(
    cloud="gcp",
    accelerator="T4",
    count=2,
    kind="gpu",
    machine_type="n1-standard-8",
    gcp_accelerator_type="nvidia-tesla-t4",
    tpu_runtime=None,
    memory_gb=16,
    zone="us-central1-a",
    region="us-central1",
    hourly_usd=1.08,
    image="common-cu124-debian-11-py310",
    **_PRICES,
)
GCP_A100 = Offer(
    cloud="gcp",
    accelerator="A100-40GB",
    count=1,
    kind="gpu",
    machine_type="a2-highgpu-1g",
    gcp_accelerator_type=None,
    tpu_runtime=None,
    memory_gb=40,
    zone="us-central1-f",
    region="us-central1",
    hourly_usd=3.67,
    image="common-cu124-debian-11-py310",
    **_PRICES,
)
GCP_TPU = Offer(
    cloud="gcp",
    accelerator="v5litepod-8",
    count=1,
    kind="tpu",
    machine_type="v5litepod-8",
    gcp_accelerator_type=None,
    tpu_runtime="v2-alpha-tpuv5-lite",
    memory_gb=16,
    zone="us-west4-a",
    region="us-west4",
    hourly_usd=9.6,
    image="",
    **_PRICES,
)
AWS_T4 = Offer(
    cloud="aws",
    accelerator="T4",
    count=1,
    kind="gpu",
    machine_type="g4dn.xlarge",
    gcp_accelerator_type=None,
    tpu_runtime=None,
    memory_gb=16,
    zone="us-east-1a",
    region="us-east-1",
    hourly_usd=0.526,
    image="Deep Learning OSS Nvidia Driver AMI GPU PyTorch * (Ubuntu 22.04) *",
    **_PRICES,
)


def make_inputs(offer: Offer, **changes: object) -> StackInputs:
    inputs = StackInputs(
        run_id="yolo-coco",
        code_name="yolo",
        dataset_name="coco",
        offer=offer,
        spot=False,
        disk_gb=150,
        ssh_from="198.51.100.7/32",
        ssh_user="trainrig",
        ssh_public_key=CLIENT_KEY,
        host_key=HOST_KEY,
        project="my-project",
        dataset_bucket="team-datasets",
        dataset_prefix="coco/",
    )
    return replace(inputs, **changes)


@dataclass
class Declared:
    """One resource as the engine saw it; secret inputs keep Pulumi's secret marker."""

    type: str
    name: str
    id: str
    inputs: dict

    @property
    def plain(self) -> dict:
        return unwrap(self.inputs)


def is_secret(value: object) -> bool:
    return rpc.is_rpc_secret(value)


def unwrap(value: object) -> object:
    """The value with every secret marker removed (what the cloud would receive)."""
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def public_strings(value: object) -> Iterator[str]:
    """Every string in `value` that is not inside a secret (what `pulumi preview` would print)."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from public_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from public_strings(item)


def _rank(name: str) -> int:
    """A node's rank from its logical name (`trainrig-<run>-n3`); 0 for a run's one machine."""
    return int(name.rsplit("-n", 1)[1]) if re.search(r"-n\d+$", name) else 0


def node_public_ip(one: str, name: str) -> str:
    """A run's one machine has `one`; node K of several has 198.51.100.(10+K)."""
    return f"198.51.100.{10 + _rank(name)}" if re.search(r"-n\d+$", name) else one


def private_ip(rank: int) -> str:
    return f"10.64.0.{rank + 2}"


def tpu_ip(worker: int) -> str:
    return TPU_IP if worker == 0 else f"{TPU_IP}{worker}"


def _fake_outputs(typ: str, name: str, inputs: dict) -> dict:
    """What the cloud would fill in after creation, for the outputs the components read."""
    if typ == "gcp:compute/instance:Instance":
        nics = copy.deepcopy(inputs["networkInterfaces"])
        nics[0]["accessConfigs"][0]["natIp"] = node_public_ip(GCP_VM_IP, name)
        nics[0]["networkIp"] = private_ip(_rank(name))
        return {"networkInterfaces": nics}
    if typ == "gcp:tpu/v2Vm:V2Vm":
        # One endpoint per worker, as many as the catalog says the slice has hosts.
        entry = catalog.load().find("gcp", str(inputs.get("acceleratorType")))
        hosts = entry.machines[0].hosts if entry else 1
        return {"networkEndpoints": [{"ipAddress": private_ip(w), "accessConfigs": [{"externalIp": tpu_ip(w)}]}
                                     for w in range(hosts)]}
    if typ == "gcp:storage/bucket:Bucket":
        return {"name": f"{name}-a1b2c3d"}
    if typ == "gcp:serviceaccount/account:Account":
        return {"email": f"{inputs['accountId']}@my-project.iam.gserviceaccount.com"}
    if typ == "aws:ec2/instance:Instance":
        return {"publicIp": node_public_ip(AWS_IP, name), "privateIp": private_ip(_rank(name))}
    if typ == "aws:s3/bucket:Bucket":
        return {"bucket": f"{name}-a1b2c3d", "arn": f"arn:aws:s3:::{name}-a1b2c3d"}
    if typ in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"):
        return {"name": f"{name}-a1b2c3d"}
    if typ == "aws:ec2/keyPair:KeyPair":
        return {"keyName": f"{name}-a1b2c3d"}
    return {}


class RecordingMocks(pulumi.runtime.Mocks):
    declared: list[Declared]
    calls: list[pulumi.runtime.MockCallArgs]

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = {**args.inputs, **_fake_outputs(args.typ, args.name, args.inputs)}
        # An S3 bucket's id is its name; other ids only need to be unique.
        resource_id = (
            state.get("bucket", f"{args.name}-id")
            if args.typ == "aws:s3/bucket:Bucket"
            else f"{args.name}-id"
        )
        self.declared.append(Declared(args.typ, args.name, resource_id, args.inputs))
        return resource_id, state

    def __init__(self) -> None:
        self.declared = []
        self.calls = []
        self.offered_zones: list[str] | None = None  # None: the region's zones OFFERED_ZONE_LETTERS

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append(args)
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": FAKE_AMI, "imageId": FAKE_AMI, "name": "Deep Learning AMI (fake)", "rootDeviceName": "/dev/sda1",
                    "blockDeviceMappings": [{"deviceName": "/dev/sda1",
                                             "ebs": {"volume_size": str(AMI_SNAPSHOT_GB), "volume_type": "gp3"}}]}
        if args.token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            region = args.args.get("region", "")
            zones = [region + z for z in OFFERED_ZONE_LETTERS] if self.offered_zones is None else self.offered_zones
            return {"id": args.args.get("region", ""), "locations": zones, "locationTypes": ["availability-zone"] * len(zones),
                    "instanceTypes": [args.args["filters"][0]["values"][0]] * len(zones)}
        raise AssertionError(f"unexpected invoke {args.token}")


@dataclass
class Deployment:
    declared: list[Declared]
    outputs: dict[str, object]
    urns: list[str]
    calls: list[pulumi.runtime.MockCallArgs] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Declared]:
        return [d for d in self.declared if d.type == typ]

    def one(self, typ: str) -> Declared:
        found = self.of_type(typ)
        assert len(found) == 1, f"{len(found)} resources of type {typ}"
        return found[0]


def ensure_event_loop() -> None:
    """Pulumi's mocks run on the thread's current event loop, which an earlier test's asyncio.run
    (an in-process lifecycle, say) leaves unset: a test's outcome must not depend on the order."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def deploy(make_machine: Callable[[], pulumi.ComponentResource], offered_zones: list[str] | None = None) -> Deployment:
    """Run `make_machine` as a Pulumi program under fresh mocks (set_mocks is process-wide, so every
    deployment starts its own) and return what it declared and the machine's resolved outputs."""
    ensure_event_loop()
    mocks = RecordingMocks()
    if offered_zones is not None:
        mocks.offered_zones = offered_zones
    monitor = MockMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="trainrig", stack="yolo-coco", preview=False, monitor=monitor)
    outputs: dict[str, object] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        machine = make_machine()
        resolved = {name: getattr(machine, name) for name in MACHINE_OUTPUTS}
        if getattr(machine, "nodes", None) is not None:  # several machines: their endpoints too
            resolved["nodes"] = machine.nodes
        return pulumi.Output.all(**resolved).apply(outputs.update)

    try:
        program()
    finally:
        # A program that raised leaves futures whose exception nobody retrieved; their finalizers log
        # it. Run them here: left to a later garbage collection, one fired inside pytest's own import
        # of a module (AST building) and broke CPython's recursion bookkeeping ("AST constructor
        # recursion depth mismatch") at the end of the session.
        gc.collect()
    return Deployment(mocks.declared, outputs, list(monitor.resources), mocks.calls)
