"""A cloud machine's first minutes, against a real OpenSSH sshd: until the boot script has put the
run's host key in place, the machine answers with another key; trainrig waits instead of trusting it,
and connects as soon as the pinned key is served."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import asyncssh
import pytest

from runner.errors import AuthFailed, Unreachable
from runner.machine import Machine
from runner.targets.cloud import wait_for_ssh
from tests.sshd import SshdUnavailable, start_sshd


@pytest.fixture
def sshd(tmp_path):  # type: ignore[no-untyped-def]
    try:
        server = start_sshd(tmp_path / "sshd")
    except SshdUnavailable as e:
        pytest.skip(str(e))
    yield server
    server.stop()


def _machine(sshd, pinned: asyncssh.SSHKey) -> Machine:  # type: ignore[no-untyped-def]
    return Machine(host="127.0.0.1", port=sshd.port, user=sshd.user, host_keys=(pinned.export_public_key().decode().strip(),),
                   client_key=str(sshd.client_key), python="python3", root=".trainrig", venv_cache=".trainrig/venvs")


def test_another_host_key_is_never_accepted_and_ends_as_unreachable(sshd):
    run_key = asyncssh.generate_private_key("ssh-ed25519")  # never installed on this machine
    with pytest.raises(Unreachable, match="did not become reachable") as e:
        asyncio.run(wait_for_ssh(_machine(sshd, run_key), deadline_s=1.5, retry_s=0.3))
    assert "not the pinned one" in str(e.value.__cause__)


def test_connects_once_the_boot_script_has_installed_the_run_host_key(sshd):
    run_key = asyncssh.generate_private_key("ssh-ed25519")
    notices = []

    async def boot_script_later() -> None:
        await asyncio.sleep(1.0)
        (sshd.dir / "host_key").write_bytes(run_key.export_private_key())
        os.kill(sshd.proc.pid, signal.SIGHUP)  # sshd re-executes itself and reads its host keys again

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        swap = asyncio.create_task(boot_script_later())
        await wait_for_ssh(_machine(sshd, run_key), deadline_s=20, on_event=notices.append, retry_s=0.3)
        await swap
        return loop.time() - t0

    waited = asyncio.run(scenario())
    assert waited >= 1.0  # it did not get in before the key was there
    assert waited < 15
    assert any("pinned host key" in n.text for n in notices)


def test_a_login_key_refused_for_good_stops_the_wait_early_with_the_os_login_hint(sshd):
    host_key = asyncssh.read_private_key(str(sshd.dir / "host_key"))  # the right host key ...
    stranger = asyncssh.generate_private_key("ssh-ed25519")  # ... but a login key the machine never got
    (sshd.dir / "stranger").write_bytes(stranger.export_private_key())
    os.chmod(sshd.dir / "stranger", 0o600)
    machine = _machine(sshd, host_key)
    machine = Machine(**{**machine.__dict__, "client_key": str(sshd.dir / "stranger")})
    with pytest.raises(AuthFailed, match="OS Login") as e:
        asyncio.run(wait_for_ssh(machine, deadline_s=60, retry_s=0.3, key_grace_s=1.0))
    assert e.value.exit_code == 2


# -- several machines: the stack's `nodes` output becomes record.nodes --------------------------------------------


def _record():  # type: ignore[no-untyped-def]
    from infra.cloud import CloudSpec
    from infra.spec import EntryPoint, RunSpec
    from runner.journal import RunRecord

    spec = RunSpec(code_name="yolo", dataset_name="coco", code_path="/nowhere", entry=EntryPoint(module="train"),
                   target="gcp", nodes=2, cloud=CloudSpec(accelerator="T4", zone="us-central1-a", region="us-central1"))
    return RunRecord(spec=spec)


def _outputs(sshd, host_public: str, nodes):  # type: ignore[no-untyped-def]
    from infra.engine_outputs import StackOutputs

    return StackOutputs(address="127.0.0.1", ssh_user=sshd.user, host_key=host_public, output_bucket="b",
                        hourly_price=1.5, nodes=nodes)


def test_every_node_is_reached_with_the_pinned_key_and_recorded_in_rank_order(sshd):
    from infra.engine_outputs import NodeEndpoint
    from runner.targets.cloud import CloudTarget

    host_public = asyncssh.read_private_key(str(sshd.dir / "host_key")).export_public_key().decode().strip()
    # Both nodes are this sshd (the cloud's machines are out of reach); their private addresses differ.
    nodes = (NodeEndpoint("127.0.0.1", "10.64.0.2", host_public), NodeEndpoint("127.0.0.1", "10.64.0.3", host_public))
    record = _record()
    rank0 = asyncio.run(CloudTarget("gcp")._reach(record, _outputs(sshd, host_public, nodes), sshd.client_key,
                                                  host_public, lambda _e: None, port=sshd.port))
    assert [m.private_host for m in record.nodes] == ["10.64.0.2", "10.64.0.3"]
    assert [m.peer_host for m in record.nodes] == ["10.64.0.2", "10.64.0.3"]
    assert record.nodes[0] == rank0 and all(m.host_keys == (host_public,) and m.port == sshd.port for m in record.nodes)
    assert all(m.python != "python3" for m in record.nodes)  # each got trainrig's tools (its interpreter's real path)
    record.machine = rank0
    assert record.all_nodes() == record.nodes


def test_one_machine_leaves_record_nodes_empty(sshd):
    from runner.targets.cloud import CloudTarget

    host_public = asyncssh.read_private_key(str(sshd.dir / "host_key")).export_public_key().decode().strip()
    record = _record()
    rank0 = asyncio.run(CloudTarget("gcp")._reach(record, _outputs(sshd, host_public, ()), sshd.client_key,
                                                  host_public, lambda _e: None, port=sshd.port))
    assert record.nodes == [] and rank0.host == "127.0.0.1" and rank0.private_host == ""


def test_a_node_reporting_another_host_key_is_refused_before_any_connection(sshd):
    from infra.engine_outputs import NodeEndpoint
    from runner.errors import HostKeyMismatch
    from runner.targets.cloud import CloudTarget

    host_public = asyncssh.read_private_key(str(sshd.dir / "host_key")).export_public_key().decode().strip()
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    nodes = (NodeEndpoint("127.0.0.1", "10.64.0.2", host_public), NodeEndpoint("127.0.0.1", "10.64.0.3", other))
    record = _record()
    with pytest.raises(HostKeyMismatch):
        asyncio.run(CloudTarget("gcp")._reach(record, _outputs(sshd, host_public, nodes), sshd.client_key,
                                              host_public, lambda _e: None, port=sshd.port))
    assert record.nodes == []


def test_the_stack_nodes_survive_the_journal_typed():
    from infra.engine_outputs import NodeEndpoint, StackOutputs, nodes_from_stack
    from runner.journal import RunRecord

    nodes = nodes_from_stack([{"address": "203.0.113.1", "privateAddress": "10.64.0.2", "hostKey": "ssh-ed25519 AAA"},
                              {"address": "203.0.113.2", "privateAddress": "10.64.0.3", "hostKey": "ssh-ed25519 AAA"}])
    record = _record()
    record.stack = StackOutputs(address="203.0.113.1", ssh_user="trainrig", host_key="ssh-ed25519 AAA",
                                output_bucket="b", hourly_price=2.0, nodes=nodes)
    back = RunRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert back.stack == record.stack and isinstance(back.stack.nodes[1], NodeEndpoint)
    assert back.stack.nodes[1].private_address == "10.64.0.3"
    old = {k: v for k, v in record.to_dict()["stack"].items() if k != "nodes"}  # a record written before `nodes`
    assert StackOutputs(**old).nodes == () and nodes_from_stack(None) == ()


def test_one_node_taken_away_is_the_state_of_a_several_machine_run():
    from runner.targets.cloud_restart import state_of

    vm = "gcp:compute/instance:Instance"
    running, stopped = {"type": vm, "outputs": {"currentStatus": "RUNNING"}}, {"type": vm, "outputs": {"currentStatus": "TERMINATED"}}
    assert state_of([running, stopped, running]) == "TERMINATED"
    assert state_of([running, running]) == "RUNNING"
    assert state_of([{"type": "gcp:storage/bucket:Bucket"}]) == "gone"
    pod = {"type": "gcp:tpu/v2Vm:V2Vm", "outputs": {"state": "PREEMPTED"}}
    assert state_of([pod]) == "PREEMPTED"


def test_a_node_that_never_answers_fails_the_reach_with_its_own_error(sshd):
    from infra.engine_outputs import NodeEndpoint
    from runner.targets.cloud import CloudTarget

    host_public = asyncssh.read_private_key(str(sshd.dir / "host_key")).export_public_key().decode().strip()
    # sshd listens on 127.0.0.1 only: rank 1 at 127.0.0.2 refuses every connection.
    nodes = (NodeEndpoint("127.0.0.1", "10.64.0.2", host_public), NodeEndpoint("127.0.0.2", "10.64.0.3", host_public))
    record = _record()
    with pytest.raises(Unreachable, match="127.0.0.2"):
        asyncio.run(CloudTarget("gcp")._reach(record, _outputs(sshd, host_public, nodes), sshd.client_key,
                                              host_public, lambda _e: None, port=sshd.port, boot_wait_s=1.0))
    assert record.nodes == []
