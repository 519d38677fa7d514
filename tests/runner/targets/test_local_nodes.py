"""Multi-node runs on the `local` target: two embedded machines on loopback, each behind its own SSH
server, running a real torchrun job (gloo on the CPU) through the real command line."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
from pathlib import Path

import pytest

from runner import nodes
from runner.events import LogChunk
from runner.journal import Journal
from runner.lifecycle import Lifecycle
from runner.remote.procs import alive
from runner.remote.status import read_status
from tests.conftest import ROOT, make_bucket, make_code, manifest, only_folder, record

DDP = ROOT / "examples" / "ddp"
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="torch is not installed here: `pip install torch==2.13.0` (as .ci/run does) runs the multi-node tests")


def _all_reduce(folder: Path) -> dict:
    return json.loads((folder / "allreduce.json").read_text())


@needs_torch
def test_two_nodes_all_reduce_with_torchrun_and_every_log_comes_home(trainrig, tmp_path, state_home):
    done = trainrig("run", str(DDP), "--code-name", "ddp2", "--dataset-name", "none", "--nodes", "2",
                    "--launcher", "torchrun", "--outputs-from", "all", "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    folder = only_folder(tmp_path / "out")
    # Each process contributed its rank + 1: 1 + 2.
    rank0, node1 = _all_reduce(folder / "outputs"), _all_reduce(folder / "node-1" / "outputs")
    assert rank0["sum"] == node1["sum"] == 3.0 and rank0["world_size"] == node1["world_size"] == 2
    assert (rank0["rank"], node1["rank"]) == (0, 1)  # torch's global ranks follow trainrig's node ranks
    assert (rank0["node_rank"], node1["node_rank"]) == (0, 1)  # TRAINRIG_NODE_RANK, from each node's supervisor
    for k in (0, 1):
        assert "first all-reduce at" in (folder / "logs" / f"node-{k}" / "train.log").read_text()
    assert (folder / "logs" / "train.log").read_text() == (folder / "logs" / "node-0" / "train.log").read_text()
    assert manifest(folder)["outcome"] == "succeeded"
    rec = record(state_home, "ddp2-none")
    assert rec["state"] == "destroyed" and len(rec["nodes"]) == 2
    assert len({m["port"] for m in rec["nodes"]}) == 2 and rec["nodes"][0] == rec["machine"]
    assert rec["nodes"][0]["host_keys"] != rec["nodes"][1]["host_keys"]  # a host key of its own, pinned
    run_dir = state_home / "runs" / "ddp2-none"
    assert not (run_dir / "sandbox").exists() and not (run_dir / "node-1").exists()


@needs_torch
def test_torchrun_on_one_machine_starts_the_training_under_torchrun(trainrig, tmp_path, state_home):
    """`--launcher torchrun` without --nodes (one machine with several GPUs, say) is not ignored:
    the training gets torchrun's environment (RANK, WORLD_SIZE...), which examples/ddp needs."""
    done = trainrig("run", str(DDP), "--code-name", "ddp1", "--dataset-name", "none", "--launcher", "torchrun",
                    "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    result = _all_reduce(only_folder(tmp_path / "out") / "outputs")
    assert (result["rank"], result["world_size"], result["sum"]) == (0, 1, 1.0)


def test_each_node_gets_its_rank_and_peers_and_logs_read_per_node(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "envs", """
        import os
        names = ("TRAINRIG_NODE_RANK", "TRAINRIG_NUM_NODES", "TRAINRIG_NODE_IPS", "TRAINRIG_MASTER_ADDR",
                 "TRAINRIG_GPUS_PER_NODE", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK")
        print(" ".join(f"{n}={os.environ[n]}" for n in names), flush=True)
    """)
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py").code == 0
    try:
        done = trainrig("start", "envs-none")
        assert done.code == 0, done.err
        every = trainrig("logs", "envs-none", "--node", "all")
        assert every.code == 0, every.err
        lines = every.out.splitlines()
        seen = {line[:4]: dict(kv.split("=", 1) for kv in line[4:].split()) for line in lines}
        assert set(seen) == {"[0] ", "[1] "}
        zero, one = seen["[0] "], seen["[1] "]
        assert (zero["TRAINRIG_NODE_RANK"], one["TRAINRIG_NODE_RANK"]) == ("0", "1") == (zero["NODE_RANK"], one["NODE_RANK"])
        assert zero["TRAINRIG_NUM_NODES"] == one["TRAINRIG_NUM_NODES"] == zero["WORLD_SIZE"] == "2"
        assert zero["TRAINRIG_NODE_IPS"] == "127.0.0.1,127.0.0.1" and zero["MASTER_ADDR"] == "127.0.0.1"
        assert zero["TRAINRIG_GPUS_PER_NODE"] == "0" and zero["MASTER_PORT"] == one["MASTER_PORT"]
        one_only = trainrig("logs", "envs-none", "--node", "1")
        assert one_only.out == next(line for line in lines if line.startswith("[1] "))[4:] + "\n"
        assert trainrig("logs", "envs-none", "--node", "2").code == 2  # there is no node 2: one sentence, exit 2
        status = asyncio.run(Lifecycle(Journal(state_home)).follow_logs("envs-none", 0, node=1))
        assert status.outcome == "succeeded"
        events: list = []
        asyncio.run(Lifecycle(Journal(state_home), events.append).follow_logs("envs-none", 0, node=nodes.ALL))
        followed = b"".join(e.data for e in events if isinstance(e, LogChunk)).decode().splitlines()
        assert sorted(followed) == sorted(lines)
    finally:
        assert trainrig("down", "envs-none", "--discard-outputs").code == 0


@pytest.mark.parametrize("args", [
    ("--nodes", "0"),
    ("--nodes", "2", "--target", "ssh", "--host", "someone@192.0.2.1"),
    ("--nodes", "65"),
])
def test_bad_node_options_exit_2_and_start_nothing(trainrig, tmp_path, state_home, args):
    code = make_code(tmp_path / "badnodes", "print('never')\n")
    done = trainrig("run", str(code), "--dataset-name", "none", *args)
    assert done.code == 2, done.err
    assert len(done.err.strip().splitlines()) == 1  # one sentence
    assert not (state_home / "runs" / "badnodes-none").exists()


def test_stop_stops_every_node_and_each_says_stopped(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "ticks", """
        import itertools, time
        for i in itertools.count():
            print(f"tick {i}", flush=True)
            time.sleep(0.1)
    """)
    rid = "ticks-none"
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py",
                    "--max-runtime", "5m").code == 0
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        done = trainrig("stop", rid)
        assert done.code in (0, 1), done.err
        run_dirs = [state_home / "runs" / rid / "sandbox", state_home / "runs" / rid / "node-1" / "sandbox"]
        statuses = [read_status(str(d / "runs" / rid / "status.json")) for d in run_dirs]
        assert [(s.done, s.outcome) for s in statuses] == [(True, "stopped"), (True, "stopped")]
    finally:
        assert trainrig("down", rid, "--discard-outputs").code == 0


def test_ctrl_c_of_one_nodes_log_names_that_node_in_its_hint(trainrig, popen_trainrig, tmp_path):
    """The hint after Ctrl-C follows the log that was followed (node 1's), not rank 0's."""
    code = make_code(tmp_path / "beats", """
        import time
        for i in range(100):
            print(f"beat {i}", flush=True)
            time.sleep(0.1)
    """)
    rid = "beats-none"
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py").code == 0
    try:
        assert trainrig("start", rid, "--no-follow").code == 0
        p = popen_trainrig("logs", rid, "--node", "1", "-f")
        assert p.stdout.readline().startswith("beat ")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 130
        hint = err.split("`")[1]  # the first command it names
        assert hint.split() == ["trainrig", "logs", rid, "--node", "1", "-f"]
    finally:
        assert trainrig("down", rid, "--stop", "--discard-outputs").code == 0


def test_a_cloud_plan_gives_torchrun_the_private_addresses_and_the_gpus():
    import dataclasses

    from infra.cloud import CloudSpec
    from infra.spec import build_spec
    from runner.machine import Machine

    spec = build_spec(code=str(DDP), code_name="ddp", dataset_name="none", nodes=2, launcher="torchrun")
    spec = dataclasses.replace(spec, target="gcp", cloud=CloudSpec(accelerator="A100", count=8))
    machines = [Machine(host=f"203.0.113.{i}", port=22, user="u", host_keys=("k",), client_key=None, python="python3",
                        root="trainrig", venv_cache="v", private_host=f"10.0.0.{i}") for i in (1, 2)]
    plan = nodes.plan(spec, machines)
    assert plan is not None and nodes.plan(dataclasses.replace(spec, nodes=1), machines[:1]) is None
    one = plan.nodes[1]
    env = dict(one.env)
    assert env["TRAINRIG_NODE_IPS"] == "10.0.0.1,10.0.0.2" and env["MASTER_ADDR"] == env["TRAINRIG_MASTER_ADDR"] == "10.0.0.1"
    assert (env["MASTER_PORT"], env["TRAINRIG_GPUS_PER_NODE"], env["WORLD_SIZE"], env["NODE_RANK"]) == ("29500", "8", "16", "1")
    args = list(one.launcher_args)
    assert args[:2] == ["-m", "torch.distributed.run"]
    flag = {args[i]: args[i + 1] for i in range(2, len(args), 2)}
    assert flag == {"--nnodes": "2", "--nproc-per-node": "8", "--node-rank": "1", "--rdzv-backend": "static",
                    "--master-addr": "10.0.0.1", "--master-port": "29500", "--max-restarts": "0"}
    assert plan.peers == (("10.0.0.1", nodes.CLOUD_PEER_PORT), ("10.0.0.2", nodes.CLOUD_PEER_PORT))
    # A TPU pod slice: one node in the spec, its hosts the machines; torchrun counts the machines.
    slice_ = dataclasses.replace(spec, nodes=1, cloud=CloudSpec(accelerator="v5litepod-16"))
    hosts = machines + [dataclasses.replace(machines[0], host=f"203.0.113.{i}", private_host=f"10.0.0.{i}") for i in (3, 4)]
    args = list(nodes.plan(slice_, hosts).nodes[3].launcher_args)
    assert args[args.index("--nnodes") + 1] == "4" and args[args.index("--node-rank") + 1] == "3"


def test_a_node_whose_server_died_is_reached_again_and_down_ends_every_server(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "revive", "print('hello')\n")
    rid = "revive-none"
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "3", "--command", "python train.py").code == 0
    try:
        ready = state_home / "runs" / rid / "node-2" / "server.json"
        dead = json.loads(ready.read_text())["pid"]
        os.kill(dead, signal.SIGKILL)
        done = trainrig("start", rid)  # reaches node 2 through a new server, same host key
        assert done.code == 0, done.err
        again = json.loads(ready.read_text())["pid"]
        assert again != dead and alive(again)
        rec = record(state_home, rid)
        assert len(rec["nodes"]) == 3 and rec["nodes"][2]["port"] == json.loads(ready.read_text())["port"]
    finally:
        assert trainrig("down", rid, "--discard-outputs").code == 0
    assert not alive(again) and not (state_home / "runs" / rid / "node-2").exists()


def test_a_multi_node_run_with_an_output_bucket_brings_every_node_home_from_it(bucket_servers, env, trainrig, tmp_path):
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    code = make_code(tmp_path / "bnodes", """
        import os
        rank = os.environ["TRAINRIG_NODE_RANK"]
        print(f"node {rank}", flush=True)
        open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "rank.txt"), "w").write(rank)
    """)
    done = trainrig("run", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py",
                    "--outputs-from", "all", "--output-store", f"s3://{bucket}/runs", "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    folder = only_folder(tmp_path / "out")
    assert (folder / "outputs" / "rank.txt").read_text() == "0"
    assert (folder / "node-1" / "outputs" / "rank.txt").read_text() == "1"
    for k in (0, 1):
        assert (folder / "logs" / f"node-{k}" / "train.log").read_text() == f"node {k}\n"
