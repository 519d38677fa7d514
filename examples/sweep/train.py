"""A tiny, fast training for `trainrig sweep` (well under a second): it "trains" a model whose
validation loss is known in advance from its parameters, so a sweep's outcome is predictable:

    val_loss(step) = (log10(lr) + 2)^2 + (batch - 64)^2 / 4096 + 1 / (step + 1)

lowest at lr=0.01, batch=64. The parameters come as `--lr 0.003 --batch 32` (the sweep appends
them); TRAINRIG_PARAM_LR / TRAINRIG_PARAM_BATCH carry the same values, which it checks. Each step
logs val_loss through trainrig_helpers (logs/metrics.jsonl, the objective the sweep follows) and
waits --step-s seconds (default 0.05, env STEP_S); outputs/result.json holds the parameters and the
last loss.

    trainrig sweep examples/sweep --param lr=log:1e-4..1e-1 --param batch=32,64,128 --trials 12 \\
        --parallel 3 --objective val_loss:min
"""

import argparse
import json
import math
import os
import time

import trainrig_helpers as th


def val_loss(lr, batch, step):
    return (math.log10(lr) + 2) ** 2 + (batch - 64) ** 2 / 4096 + 1 / (step + 1)


def main():
    ap = th.add_directory_arguments(argparse.ArgumentParser())
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=int(os.environ.get("STEPS", "8")))
    ap.add_argument("--step-s", type=float, default=float(os.environ.get("STEP_S", "0.05")))
    a = ap.parse_args()
    for name, value in (("LR", a.lr), ("BATCH", a.batch)):
        given = os.environ.get("TRAINRIG_PARAM_" + name)
        if given is not None and float(given) != float(value):
            raise SystemExit(f"TRAINRIG_PARAM_{name}={given} disagrees with the argument {value}")
    dirs = th.directories(a)
    metrics = th.MetricsWriter(dirs.logs, tensorboard=False)
    loss = None
    for step in range(a.steps):
        loss = val_loss(a.lr, a.batch, step)
        metrics.log(step, val_loss=loss)
        print("step %d val_loss %.4f" % (step, loss), flush=True)
        time.sleep(a.step_s)
    with open(os.path.join(dirs.output, "result.json"), "w") as f:
        json.dump({"lr": a.lr, "batch": a.batch, "val_loss": loss, "steps_done": a.steps,
                   "env": {k: v for k, v in os.environ.items() if k.startswith("TRAINRIG_PARAM_")}}, f)


if __name__ == "__main__":
    main()
