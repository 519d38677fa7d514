"""Handwritten digits (scikit-learn's 8x8 digits, exported to CSV in data/): a small two-layer
network in NumPy. Follows trainrig's entry point contract:

    python -m train --dataset_directory D --output_directory O --logs_directory L [--epochs N]

Without the arguments it reads TRAINRIG_DATASET_DIR / TRAINRIG_OUTPUT_DIR / TRAINRIG_LOGS_DIR
(and without those, data/, outputs/ and logs/ here). It uses trainrig_helpers for the chores: the
folders, a log file, the metrics (logs/metrics.jsonl, which `trainrig logs RUN --metrics` shows,
and TensorBoard events), and a checkpoint after every epoch (outputs/checkpoints/, the last two
kept), from which a second run on the same machine resumes. Also writes best.npz (best test
accuracy so far), the final model.npz and metrics.json into the output folder.
"""

import argparse
import json
import os
import time

import numpy as np
import trainrig_helpers as th


def load(path):
    raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    return raw[:, :-1] / 16.0, raw[:, -1].astype(np.int64)


def forward(params, x):
    h = np.maximum(0.0, x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return h, p / p.sum(axis=1, keepdims=True)


def evaluate(params, x, y):
    _, p = forward(params, x)
    loss = float(-np.log(p[np.arange(len(y)), y] + 1e-9).mean())
    return loss, float((p.argmax(axis=1) == y).mean())


def main():
    ap = th.add_directory_arguments(argparse.ArgumentParser())
    ap.add_argument("--epochs", type=int, default=int(os.environ.get("EPOCHS", "30")))
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    dirs = th.directories(a)
    log = th.logger("digits", dirs.logs)
    metrics = th.MetricsWriter(dirs.logs)

    x_train, y_train = load(os.path.join(dirs.dataset, "train.csv"))
    x_test, y_test = load(os.path.join(dirs.dataset, "test.csv"))
    log.info("dataset: %d training and %d test images of 8x8 pixels", len(y_train), len(y_test))

    rng = np.random.default_rng(a.seed)
    params = {
        "w1": rng.normal(0, 0.1, (64, a.hidden)).astype(np.float32), "b1": np.zeros(a.hidden, np.float32),
        "w2": rng.normal(0, 0.1, (a.hidden, 10)).astype(np.float32), "b2": np.zeros(10, np.float32),
    }
    first, best = 1, -1.0
    checkpoints = os.path.join(dirs.output, "checkpoints")
    last = th.latest_checkpoint(checkpoints, suffix=".npz")
    if last is not None:
        with np.load(last.path) as saved:
            params = {k: saved[k] for k in params}
            best = float(saved["best"])
        first = last.step + 1
        log.info("resuming after epoch %d from %s", last.step, last.path)

    history = []
    for epoch in range(first, a.epochs + 1):
        t0 = time.time()
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), 32):
            idx = order[start:start + 32]
            x, y = x_train[idx], y_train[idx]
            h, p = forward(params, x)
            d = p.copy()
            d[np.arange(len(y)), y] -= 1.0
            d /= len(y)
            grads = {"w2": h.T @ d, "b2": d.sum(0)}
            dh = (d @ params["w2"].T) * (h > 0)
            grads.update(w1=x.T @ dh, b1=dh.sum(0))
            for k in params:
                params[k] -= a.lr * grads[k]
        loss, acc = evaluate(params, x_train, y_train)
        test_loss, test_acc = evaluate(params, x_test, y_test)
        history.append({"epoch": epoch, "loss": loss, "accuracy": acc, "test_loss": test_loss, "test_accuracy": test_acc})
        metrics.log(epoch, loss=loss, accuracy=acc, test_loss=test_loss, test_accuracy=test_acc)
        log.info("epoch %3d/%d  loss %.4f  accuracy %.3f  test_loss %.4f  test_accuracy %.3f  (%.2fs)",
                 epoch, a.epochs, loss, acc, test_loss, test_acc, time.time() - t0)
        if test_acc > best:
            best = test_acc
            np.savez(os.path.join(dirs.output, "best.npz"), epoch=epoch, **params)
        th.save_checkpoint(epoch, lambda path: np.savez(path, best=best, **params), suffix=".npz",
                           directory=checkpoints, keep=2)

    np.savez(os.path.join(dirs.output, "model.npz"), **params)
    with open(os.path.join(dirs.output, "metrics.json"), "w") as f:
        json.dump({"best_test_accuracy": best, "epochs": history}, f, indent=1)
    log.info("done: best test accuracy %.3f; model in %s/model.npz", best, dirs.output)


if __name__ == "__main__":
    main()
