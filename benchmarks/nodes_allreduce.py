"""From `trainrig run --nodes 2 --launcher torchrun` (local target: two loopback machines, each behind
its own SSH server) to the first all-reduce of examples/ddp (the line it prints with a timestamp),
side by side with the floor: the same script under a bare `python -m torch.distributed.run`, two
nodes started by hand on loopback, which provisions, uploads, installs and supervises nothing.

Usage: python -m benchmarks.nodes_allreduce [--rounds 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, TRAINRIG, report, trainrig_env

DDP = ROOT / "examples" / "ddp"
FIRST = re.compile(rb"first all-reduce at (\d+\.\d+)")


def _first_all_reduce(out: bytes, what: str) -> float:
    m = FIRST.search(out)
    if m is None:
        raise SystemExit(f"{what} printed no first all-reduce line")
    return float(m.group(1))


def trainrig_round(env: dict[str, str], outputs: Path) -> float:
    t0 = time.time()  # wall clock: the example's timestamp is one too, on this same computer
    done = subprocess.run([*TRAINRIG, "run", str(DDP), "--code-name", "bench-ddp", "--dataset-name", "none",
                           "--nodes", "2", "--launcher", "torchrun", "--outputs", str(outputs)],
                          env=env, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"trainrig run failed (exit {done.returncode}): {done.stderr.decode()[-500:]}")
    return _first_all_reduce(done.stdout, "trainrig run") - t0


def bare_round(work: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.time()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(k),
         "--rdzv-backend", "static", "--master-addr", "127.0.0.1", "--master-port", str(port), "--max-restarts", "0",
         str(DDP / "train.py"), "--output_directory", str(work / f"bare-{k}")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(work)) for k in (0, 1)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode != 0 for p in procs):
        raise SystemExit("the bare torchrun failed")
    return min(_first_all_reduce(o, "bare torchrun") for o in outs) - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trainrig-bench-nodes-"))
    env = trainrig_env(work / "home")
    try:
        trainrig_round(env, work / "out")  # warm-up: the cached venv is built once, as on a reused machine
        bare_round(work)
        ours, floor = [], []
        for _ in range(a.rounds):
            ours.append(trainrig_round(env, work / "out"))
            floor.append(bare_round(work))
        report("run --nodes 2 --launcher torchrun to the first all-reduce (local target, gloo on the CPU)",
               [("trainrig run --nodes 2 --launcher torchrun", ours), ("bare torch.distributed.run, 2 nodes", floor)],
               "bare torch.distributed.run, 2 nodes")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
