"""A TPU run's machine deleted once its outputs are safe in its bucket (runner/tpu_release.py): only
then, only the TPU node, and afterwards `status`, `logs` and `download` read the bucket (the GCS
emulator plays it) without ever connecting to the deleted machine's address.

No Pulumi CLI can run here: the stack below the Automation API is tests/infra's RecordedStack,
holding the state the run's real program declares under Pulumi's mocks."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import replace

import asyncssh
import pytest

from infra.cloud import CloudOptions
from infra.engine import TPU_NODE_TYPE, Engine
from infra.engine_outputs import StackOutputs
from infra.spec import build_spec
from runner.events import Notice
from runner.journal import Journal, RunRecord
from runner.machine import Machine
from runner.remote.location import parse_location
from runner.remote.status import Status
from runner.remote.stores import open_store
from runner.remote.sync import push
from runner.tpu_release import release_if_done
from tests.conftest import make_bucket, only_folder
from tests.infra.components.harness import GCP_TPU
from tests.infra.test_engine_release import RecordedStack, stack_state
from tests.tui.test_cloud_cli import DIGITS

TPU, T4 = "v5litepod-8", "T4"
DONE = {"phase": "finished", "outcome": "succeeded", "exit_code": 0, "final_sync_ok": True, "started_at": "2026-11-22T10:00:00.000Z",
        "ended_at": "2026-11-22T10:30:00.000Z", "last_sync_at": "2026-11-22T10:30:01.000Z"}


class Listener:
    """A TCP port standing for the deleted machine's address: counts who still connects to it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def cloud_record(accelerator: str, bucket: str, port: int, state: str = "finished", **changes: object) -> RunRecord:
    spec = build_spec(code=DIGITS, code_name="tpurel", dataset_name=accelerator.lower().replace("-", ""), target="gcp",
                      cloud=CloudOptions(accelerator=accelerator, project="p", ssh_from="203.0.113.7/32"))
    pinned = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    machine = Machine(host="127.0.0.1", port=port, user="trainrig", host_keys=(pinned,), client_key=None,
                      python="python3", root=".trainrig", venv_cache=".trainrig/venvs", shutdown_after=True)
    return replace(RunRecord(spec=spec, state=state, machine=machine, stack_created=True,
                             stack=StackOutputs("127.0.0.1", "trainrig", pinned, bucket, 9.6)), **changes)


@pytest.fixture
def recorded_stack(monkeypatch) -> RecordedStack:  # type: ignore[no-untyped-def]
    stack = RecordedStack(stack_state(GCP_TPU))
    monkeypatch.setattr(Engine, "_stack", lambda self, run_id, create, missing_ok=False: stack)
    return stack


@pytest.mark.parametrize("accelerator,state,status,record_changes", [
    (T4, "finished", DONE, {}),  # a GPU VM: its halted machine bills its disk only; `down` removes it
    (TPU, "started", {"phase": "training"}, {}),
    (TPU, "started", dict(DONE, phase="syncing", final_sync_ok=None), {}),
    (TPU, "finished", dict(DONE, final_sync_ok=False, sync_error="No space left on device"), {}),
    (TPU, "finished", dict(DONE, outcome="lost", final_sync_ok=False), {}),  # a dead supervisor, settled
    (TPU, "started", dict(DONE, outcome="preempted"), {"max_restarts": 3}),  # goes on on a new machine
    (TPU, "started", dict(DONE, outcome="preempted"), {"max_restarts": 0, "attempt_started_at": "2026-11-22T11:00:00.000Z",
                                                        "restarts": []}),  # from a machine already replaced
    (TPU, "destroying", DONE, {}),  # `down` is on it
    (TPU, "finished", DONE, {"machine_released_at": "2026-11-22T10:31:00.000Z"}),  # released already
], ids=["gpu", "training", "syncing", "final-sync-failed", "lost", "preempted", "replaced", "destroying", "released"])
def test_nothing_is_released_unless_a_tpu_run_is_over_with_its_outputs_in_the_bucket(
        accelerator, state, status, record_changes, recorded_stack, tmp_path):
    journal = Journal(tmp_path)
    record = cloud_record(accelerator, "b", 1, state=state, **record_changes)
    journal.save(record)
    events: list[object] = []
    done = Status(run_id=record.run_id, **status)  # type: ignore[arg-type]
    assert asyncio.run(release_if_done(record, done, journal, events.append)) is False
    assert recorded_stack.calls == [] and events == []
    assert journal.load(record.run_id).machine_released_at == record.machine_released_at


def test_a_finished_tpu_run_loses_its_node_only_and_is_read_from_its_bucket(
        bucket_servers, env, trainrig, recorded_stack, tmp_path, state_home):
    env.update(bucket_servers)
    env["PATH"] = "/usr/bin:/bin"  # no Pulumi CLI, whatever the developer has
    bucket = make_bucket("gs")
    machine = Listener()
    record = cloud_record(TPU, bucket, machine.port)
    rid = record.run_id
    done = Status(run_id=rid, **DONE)  # type: ignore[arg-type]
    # What the supervisor left in the bucket before the machine halted.
    src = tmp_path / "left"
    (src / "outputs").mkdir(parents=True)
    (src / "logs").mkdir()
    (src / "outputs" / "model.npz").write_bytes(b"weights" * 100)
    (src / "logs" / "train.log").write_text("epoch 1 loss 0.5\n")
    (src / "logs" / "metrics.jsonl").write_text('{"step": 1, "wall_time": 1795300000.0, "values": {"loss": 0.5}}\n')
    (src / "status.json").write_text(json.dumps(done.to_dict()))
    push(str(src), open_store(parse_location(f"gs://{bucket}/{rid}")), None)
    journal = Journal(state_home)
    journal.save(record)
    nodes = [r["urn"] for r in recorded_stack.resources if r["type"] == TPU_NODE_TYPE]
    kept = [r["urn"] for r in recorded_stack.resources if r["type"] != TPU_NODE_TYPE]
    try:
        events: list[object] = []
        assert asyncio.run(release_if_done(record, done, journal, events.append)) is True
        assert [(name, call["target"]) for name, call in recorded_stack.calls] == [("destroy", nodes)]
        assert [r["urn"] for r in recorded_stack.resources] == kept  # bucket, identity, network: until `down`
        released = journal.load(rid)
        assert released.machine_released_at and released.state == "finished"
        assert any(isinstance(e, Notice) for e in events)
        # A second follower (or `status`) seeing the same end releases nothing more.
        assert asyncio.run(release_if_done(released, done, journal, events.append)) is False
        assert len(recorded_stack.calls) == 1

        shown = trainrig("status", rid)
        assert shown.code == 0, shown.err
        assert "succeeded" in shown.out and f"trainrig download {rid}" in shown.out
        log = trainrig("logs", rid)
        assert log.code == 0, log.err
        assert log.out == "epoch 1 loss 0.5\n"
        points = trainrig("logs", rid, "--metrics")
        assert points.code == 0, points.err
        assert "0.5" in points.out
        got = trainrig("download", rid, "--outputs", str(tmp_path / "home"))
        assert got.code == 0, got.out + got.err
        folder = only_folder(tmp_path / "home")
        assert (folder / "outputs" / "model.npz").read_bytes() == b"weights" * 100
        assert (folder / "logs" / "train.log").read_text() == "epoch 1 loss 0.5\n"
        assert machine.connections == 0  # nothing reattached to the deleted machine's address
        assert journal.load(rid).state == "finished"

        # The rest of the stack goes at `down` (here it stops at the missing Pulumi CLI).
        down = trainrig("down", rid, "--yes")
        assert down.code == 2 and "Pulumi CLI is not installed" in down.out + down.err
    finally:
        machine.close()
        journal.remove(rid)
