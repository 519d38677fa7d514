"""Several machines in one run's stack under Pulumi's mocks: `--nodes N` on GCP and AWS (N instances, one
rule that admits the run's own machines to each other and nothing else) and a GCP TPU pod slice (one TPU
VM resource, several workers); the `nodes` output gives each one's public and private address and host
key in rank order. A run of one machine declares no such rule and exports no `nodes`."""

from __future__ import annotations

import pytest

from infra import catalog, program
from infra.components.aws_gpu_machine import AwsGpuMachine
from infra.components.gcp_gpu_machine import GcpGpuMachine
from infra.components.gcp_tpu_machine import GcpTpuMachine
from infra.errors import BadInput
from tests.infra.components import policy
from tests.infra.components.harness import (
    AWS_T4,
    GCP_T4,
    GCP_TPU,
    HOST_KEY,
    Deployment,
    deploy,
    make_inputs,
    node_public_ip,
    private_ip,
    tpu_ip,
)
from tests.infra.components.provider_rules import violations

INSTANCE, TPU, FIREWALL = "gcp:compute/instance:Instance", "gcp:tpu/v2Vm:V2Vm", "gcp:compute/firewall:Firewall"
EC2, SG = "aws:ec2/instance:Instance", "aws:ec2/securityGroup:SecurityGroup"
TAG = "trainrig-yolo-coco"
WORLD = ("0.0.0.0/0", "::/0")
POD = catalog.resolve("gcp", "v5litepod-16")


def gcp(nodes: int) -> Deployment:
    return deploy(lambda: GcpGpuMachine("yolo-coco", make_inputs(GCP_T4, nodes=nodes)))


def aws(nodes: int) -> Deployment:
    return deploy(lambda: AwsGpuMachine("yolo-coco", make_inputs(AWS_T4, nodes=nodes)))


def tpu(offer=POD) -> Deployment:
    return deploy(lambda: GcpTpuMachine("yolo-coco", make_inputs(offer)))


def expected_nodes(publics: list[str]) -> list[dict[str, str]]:
    return [{"address": ip, "privateAddress": private_ip(rank), "hostKey": HOST_KEY.public_openssh}
            for rank, ip in enumerate(publics)]


@pytest.fixture(scope="module")
def gcp3() -> Deployment:
    return gcp(3)


@pytest.fixture(scope="module")
def aws2() -> Deployment:
    return aws(2)


@pytest.fixture(scope="module")
def pod() -> Deployment:
    return tpu()


def test_gcp_makes_n_alike_instances_named_by_rank_on_the_run_network(gcp3):
    vms = gcp3.of_type(INSTANCE)
    assert [d.name for d in vms] == [f"{TAG}-n0", f"{TAG}-n1", f"{TAG}-n2"]
    first = vms[0].plain
    for vm in vms[1:]:
        p = vm.plain
        assert (p["machineType"], p["zone"], p["guestAccelerators"], p["bootDisk"], p["networkInterfaces"], p["tags"]) == (
            first["machineType"], first["zone"], first["guestAccelerators"], first["bootDisk"],
            first["networkInterfaces"], first["tags"])
    assert first["tags"] == [TAG]


def test_gcp_peer_rule_admits_the_run_tag_alone_on_every_protocol(gcp3):
    ssh, peer = sorted(gcp3.of_type(FIREWALL), key=lambda d: "sourceTags" in d.plain)
    assert ssh.plain["sourceRanges"] == ["198.51.100.7/32"] and ssh.plain["allows"] == [{"protocol": "tcp", "ports": ["22"]}]
    p = peer.plain
    assert p["sourceTags"] == [TAG] and p["targetTags"] == [TAG] and p["direction"] == "INGRESS"
    assert "sourceRanges" not in p and "sourceServiceAccounts" not in p  # nothing from outside, not even a range
    assert p["allows"] == [{"protocol": "all"}]
    assert p["network"] == gcp3.one("gcp:compute/network:Network").id


def test_gcp_outputs_rank_0_as_the_address_and_every_node_in_rank_order(gcp3):
    publics = [node_public_ip("", f"{TAG}-n{k}") for k in range(3)]
    assert gcp3.outputs["address"] == publics[0]
    assert gcp3.outputs["nodes"] == expected_nodes(publics)
    assert gcp3.outputs["hourly_price"] == pytest.approx(3 * GCP_T4.hourly_usd)  # all the run's machines


def test_aws_makes_n_instances_in_the_run_subnet_and_group(aws2):
    vms = aws2.of_type(EC2)
    assert [d.name for d in vms] == [f"{TAG}-n0", f"{TAG}-n1"]
    assert [d.plain["tags"]["Name"] for d in vms] == [f"{TAG}-n0", f"{TAG}-n1"]
    group, subnet = aws2.one(SG), aws2.one("aws:ec2/subnet:Subnet")
    assert all(d.plain["subnetId"] == subnet.id and d.plain["vpcSecurityGroupIds"] == [group.id] for d in vms)
    assert vms[0].plain["instanceType"] == vms[1].plain["instanceType"] == "g4dn.xlarge"


def test_aws_peer_rule_is_the_group_itself_on_every_port(aws2):
    ssh, peer = aws2.one(SG).plain["ingress"]
    assert ssh["cidrBlocks"] == ["198.51.100.7/32"] and (ssh["fromPort"], ssh["toPort"]) == (22, 22)
    assert peer["self"] is True and (peer["protocol"], peer["fromPort"], peer["toPort"]) == ("-1", 0, 0)
    assert not any(peer.get(k) for k in ("cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "securityGroups"))
    assert not [d for d in aws2.declared if "IngressRule" in d.type or "securityGroupRule" in d.type]


def test_aws_outputs_every_node(aws2):
    publics = [node_public_ip("", f"{TAG}-n{k}") for k in range(2)]
    assert aws2.outputs["address"] == publics[0] and aws2.outputs["nodes"] == expected_nodes(publics)


@pytest.mark.parametrize("make", [gcp, aws], ids=["gcp", "aws"])
def test_one_machine_keeps_its_name_and_gets_no_peer_rule_nor_nodes_output(make):
    stack = make(1)
    kind = INSTANCE if make is gcp else EC2
    assert [d.name for d in stack.of_type(kind)] == [TAG]
    assert "nodes" not in stack.outputs
    assert not [d for d in stack.of_type(FIREWALL) if "sourceTags" in d.plain]
    assert all(r.get("self") is not True for d in stack.of_type(SG) for r in d.plain["ingress"])


def test_a_pod_slice_is_one_tpu_vm_whose_workers_are_the_nodes(pod):
    assert POD.hosts == 4
    vm = pod.one(TPU).plain
    assert vm["acceleratorType"] == "v5litepod-16" and vm["runtimeVersion"] == "v2-alpha-tpuv5-lite"
    assert vm["tags"] == [TAG] and vm["networkConfig"]["enableExternalIps"] is True
    assert pod.outputs["address"] == tpu_ip(0)
    assert pod.outputs["nodes"] == expected_nodes([tpu_ip(w) for w in range(4)])
    assert pod.outputs["hourly_price"] == POD.hourly_usd  # the slice's price covers all its hosts
    peer = [d.plain for d in pod.of_type(FIREWALL) if "sourceTags" in d.plain]
    assert peer == [{**peer[0], "sourceTags": [TAG], "targetTags": [TAG], "allows": [{"protocol": "all"}]}]


def test_a_single_host_slice_exports_no_nodes_and_no_peer_rule():
    stack = tpu(GCP_TPU)
    assert "nodes" not in stack.outputs
    assert not [d for d in stack.of_type(FIREWALL) if "sourceTags" in d.plain]


def test_nodes_on_a_tpu_slice_are_refused():
    with pytest.raises(BadInput, match="hosts are its nodes") as e:
        GcpTpuMachine("yolo-coco", make_inputs(POD, nodes=2))
    assert e.value.exit_code == 2


STACKS = {
    "gcp-3": lambda: (gcp(3), make_inputs(GCP_T4, nodes=3)),
    "aws-2": lambda: (aws(2), make_inputs(AWS_T4, nodes=2)),
    "aws-2-spot": lambda: (deploy(lambda: AwsGpuMachine("yolo-coco", make_inputs(AWS_T4, nodes=2, spot=True))),
                           make_inputs(AWS_T4, nodes=2, spot=True)),
    "tpu-pod": lambda: (tpu(), make_inputs(POD)),
}


@pytest.mark.parametrize("name", STACKS)
def test_multi_machine_stacks_pass_the_providers_rules_and_the_policy(name):
    stack, inputs = STACKS[name]()
    assert violations(stack.declared, inputs) == []
    assert policy.violations(stack.declared, inputs) == []


def test_the_policy_catches_a_peer_rule_open_to_a_range_or_in_a_one_machine_run(gcp3, aws2):
    import copy

    from tests.infra.components.harness import unwrap

    inputs = make_inputs(GCP_T4, nodes=3)
    declared = copy.deepcopy(gcp3.declared)
    [peer] = [d for d in declared if d.type == FIREWALL and "sourceTags" in d.plain]
    peer.inputs = {**unwrap(peer.inputs), "sourceRanges": ["0.0.0.0/0"]}
    assert any("peer rule lets in" in p for p in policy.violations(declared, inputs))
    assert any("one machine" in p for p in policy.violations(gcp3.declared, make_inputs(GCP_T4)))
    declared = copy.deepcopy(aws2.declared)
    [group] = [d for d in declared if d.type == SG]
    group.inputs = unwrap(group.inputs)
    group.inputs["ingress"][1]["cidrBlocks"] = list(WORLD[:1])
    assert any("peer rule also lets in" in p for p in policy.violations(declared, make_inputs(AWS_T4, nodes=2)))


def test_the_program_exports_nodes_only_for_several_machines(monkeypatch):
    import pulumi

    for inputs, wanted in ((make_inputs(GCP_T4, nodes=2), True), (make_inputs(AWS_T4, nodes=3), True),
                           (make_inputs(POD), True), (make_inputs(GCP_T4), False), (make_inputs(GCP_TPU), False)):
        names: dict[str, object] = {}
        monkeypatch.setattr(pulumi, "export", lambda name, value, names=names: names.__setitem__(name, value))
        deploy(lambda inputs=inputs: program.build(inputs))
        assert (program.NODES_OUTPUT in names) is wanted, inputs.offer.accelerator


def test_the_longest_run_id_with_two_digit_ranks_still_makes_names_gcp_takes():
    code, dataset = "c" * 20, "d" * 19  # a run id of names.MAX_RUN_ID (40) characters
    inputs = make_inputs(GCP_T4, nodes=11, run_id=f"{code}-{dataset}", code_name=code, dataset_name=dataset)
    stack = deploy(lambda: GcpGpuMachine(inputs.run_id, inputs))
    assert len(stack.of_type(INSTANCE)) == 11 and stack.of_type(INSTANCE)[-1].name.endswith("-n10")
    assert violations(stack.declared, inputs) == []
