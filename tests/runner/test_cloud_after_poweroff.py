"""A cloud run after its machine powered itself off (its last step): the status and the outputs come
from the stack's own bucket (moto's S3 server plays it), and `down` lets the bucket go only once the
outputs are home."""

from __future__ import annotations

import asyncio
import json

import asyncssh

from infra.cloud import CloudOptions
from infra.engine_outputs import StackOutputs
from infra.spec import build_spec
from runner.journal import Journal, RunRecord
from runner.lifecycle import Lifecycle
from runner.machine import Machine
from runner.remote.location import parse_location
from runner.remote.status import Status
from runner.remote.stores import open_store
from tests.conftest import make_bucket, only_folder
from tests.tui.test_cloud_cli import DIGITS


def test_status_and_download_from_the_stack_bucket_once_the_machine_is_off(bucket_servers, env, trainrig, tmp_path, state_home):
    env.update(bucket_servers)
    env["PATH"] = "/usr/bin:/bin"  # no Pulumi CLI, whatever the developer has
    bucket = make_bucket("s3")
    spec = build_spec(code=DIGITS, code_name="poweroff", dataset_name="t4", target="aws",
                      cloud=CloudOptions(accelerator="A10G", region="us-east-1", ssh_from="198.51.100.7/32"))
    rid = spec.run_id
    # What the supervisor left in the bucket before `shutdown -h`.
    done = Status(run_id=rid, phase="finished", outcome="succeeded", exit_code=0, started_at="2026-11-22T10:00:00Z",
                  ended_at="2026-11-22T10:30:00Z", last_sync_at="2026-11-22T10:30:01Z")
    src = tmp_path / "left"
    (src / "outputs").mkdir(parents=True)
    (src / "logs").mkdir()
    (src / "outputs" / "model.npz").write_bytes(b"weights" * 100)
    (src / "logs" / "train.log").write_text("epoch 1 loss 0.5\n")
    (src / "logs" / "metrics.jsonl").write_text('{"step": 1, "wall_time": 1795300000.0, "values": {"loss": 0.5}}\n')
    (src / "status.json").write_text(json.dumps(done.to_dict()))
    from runner.remote.sync import push

    push(str(src), open_store(parse_location(f"s3://{bucket}/{rid}")), None)
    # The machine's address answers nothing any more (a closed loopback port).
    pinned = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    off = Machine(host="127.0.0.1", port=1, user="ubuntu", host_keys=(pinned,),
                  client_key=None, python="python3", root=".trainrig", venv_cache=".trainrig/venvs", shutdown_after=True)
    journal = Journal(state_home)
    journal.save(RunRecord(spec=spec, state="started", machine=off,
                           stack=StackOutputs("127.0.0.1", "ubuntu", off.host_keys[0], bucket, 1.01), stack_created=True))
    try:
        # A follower meeting the powered-off machine ends with the bucket's log and outcome.
        followed = trainrig("logs", rid, "-f")
        assert followed.code == 0, followed.err
        assert followed.out == "epoch 1 loss 0.5\n"
        assert "powered itself off" in followed.err
        assert journal.load(rid).state == "finished"  # the outcome came from the bucket (exit 0: succeeded)

        points = trainrig("logs", rid, "--metrics")  # from the bucket too
        assert points.code == 0, points.err
        assert "loss" in points.out and "0.5" in points.out

        shown = trainrig("status", rid)
        assert shown.code == 0, shown.err
        assert "finished" in shown.out and "succeeded" in shown.out
        assert "last one synced to the bucket" in shown.out
        assert journal.load(rid).state == "finished"
        assert "cost      $1.01/hour" in shown.out  # the stack's price

        log = trainrig("logs", rid)  # the machine is off: the log as last synced to the bucket
        assert log.code == 0, log.err
        assert log.out == "epoch 1 loss 0.5\n"
        assert "last synced to the bucket" in log.err

        refused = trainrig("down", rid, "--yes")
        assert refused.code == 2 and f"trainrig download {rid}" in refused.out + refused.err

        got = trainrig("download", rid, "--outputs", str(tmp_path / "home"))
        assert got.code == 0, got.out + got.err
        folder = only_folder(tmp_path / "home")
        assert (folder / "outputs" / "model.npz").read_bytes() == b"weights" * 100
        assert (folder / "logs" / "train.log").read_text() == "epoch 1 loss 0.5\n"

        # Downloaded: down goes on to the engine (this computer has no Pulumi CLI, so it stops there).
        down = trainrig("down", rid, "--yes")
        assert down.code == 2 and "Pulumi CLI is not installed" in down.out + down.err
    finally:
        journal.remove(rid)


def test_every_nodes_log_and_metrics_come_from_the_bucket_once_the_machines_are_off(bucket_servers, env, trainrig, tmp_path,
                                                                                   state_home):
    env.update(bucket_servers)
    env["PATH"] = "/usr/bin:/bin"
    bucket = make_bucket("s3")
    spec = build_spec(code=DIGITS, code_name="poweroff", dataset_name="nodes", target="aws", nodes=2,
                      cloud=CloudOptions(accelerator="A10G", region="us-east-1", ssh_from="198.51.100.7/32"))
    rid = spec.run_id
    src = tmp_path / "left"
    for k, where in ((0, src), (1, src / "node-1")):  # node K syncs under <store>/<run>/node-K/
        (where / "logs").mkdir(parents=True)
        (where / "logs" / "train.log").write_text(f"node {k} epoch 1\n")
        (where / "logs" / "metrics.jsonl").write_text(json.dumps({"step": 1, "wall_time": 1795300000.0, "values": {"rank": k}}) + "\n")
    from runner.remote.sync import push

    push(str(src), open_store(parse_location(f"s3://{bucket}/{rid}")), None)
    pinned = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    off = [Machine(host="127.0.0.1", port=1, user="ubuntu", host_keys=(pinned,), client_key=None, python="python3",
                   root=".trainrig", venv_cache=".trainrig/venvs", shutdown_after=True, private_host=f"10.0.0.{k}")
           for k in (1, 2)]
    journal = Journal(state_home)
    journal.save(RunRecord(spec=spec, state="started", machine=off[0], nodes=off,
                           stack=StackOutputs("127.0.0.1", "ubuntu", pinned, bucket, 2.02), stack_created=True))
    try:
        one = trainrig("logs", rid, "--node", "1")
        assert one.code == 0, one.err
        assert one.out == "node 1 epoch 1\n"
        every = trainrig("logs", rid, "--node", "all")
        assert every.code == 0, every.err
        assert every.out == "[0] node 0 epoch 1\n[1] node 1 epoch 1\n"
        points = asyncio.run(Lifecycle(journal).read_metrics(rid, 1))
        assert [p.values for p in points] == [{"rank": 1.0}]
    finally:
        journal.remove(rid)
