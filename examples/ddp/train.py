"""A tiny multi-node job: every process contributes its global rank + 1 to one all-reduce (gloo on
the CPU, NCCL on GPUs), prints the sum with a timestamp, and writes it to its outputs.

    trainrig run examples/ddp --nodes 2 --launcher torchrun

torchrun (started by trainrig on every node) sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT for each process; STEPS=N keeps it all-reducing N more times, 0.2 s apart.
"""

import argparse
import json
import os
import time

import torch
import torch.distributed as dist


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset_directory", default="")
    p.add_argument("--output_directory", default=os.environ.get("TRAINRIG_OUTPUT_DIR", "outputs"))
    p.add_argument("--logs_directory", default="")
    a = p.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if cuda else torch.device("cpu")
    t = torch.tensor([float(rank + 1)], device=device)
    dist.all_reduce(t)
    # The benchmark reads this line's timestamp (benchmarks/nodes_allreduce.py).
    print(f"first all-reduce at {time.time():.6f}: rank {rank} of {world}, sum {t.item():g}", flush=True)
    for step in range(int(os.environ.get("STEPS", "0"))):
        time.sleep(0.2)
        dist.all_reduce(torch.ones(1, device=device))
        print(f"step {step + 1}", flush=True)
    os.makedirs(a.output_directory, exist_ok=True)
    with open(os.path.join(a.output_directory, "allreduce.json"), "w") as f:
        json.dump({"rank": rank, "world_size": world, "sum": t.item(),
                   "node_rank": int(os.environ.get("TRAINRIG_NODE_RANK", "0"))}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
