"""Handwritten digits (scikit-learn's 8x8 digits, exported to CSV in data/): a small two-layer
network in NumPy. Follows trainrig's entry point contract:

    python -m train --dataset_directory D --output_directory O --logs_directory L [--epochs N]

Without the arguments it reads TRAINRIG_DATASET_DIR / TRAINRIG_OUTPUT_DIR / TRAINRIG_LOGS_DIR.
Writes a checkpoint after every epoch (best.npz, last.npz), the final model (model.npz) and
metrics.json into the output directory, and one line per epoch to the log (and to metrics.csv).
"""

import argparse
import json
import os
import time

import numpy as np


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
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset_directory", default=os.environ.get("TRAINRIG_DATASET_DIR", "data"))
    ap.add_argument("--output_directory", default=os.environ.get("TRAINRIG_OUTPUT_DIR", "outputs"))
    ap.add_argument("--logs_directory", default=os.environ.get("TRAINRIG_LOGS_DIR", "logs"))
    ap.add_argument("--epochs", type=int, default=int(os.environ.get("EPOCHS", "30")))
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.output_directory, exist_ok=True)
    os.makedirs(a.logs_directory, exist_ok=True)

    x_train, y_train = load(os.path.join(a.dataset_directory, "train.csv"))
    x_test, y_test = load(os.path.join(a.dataset_directory, "test.csv"))
    print(f"dataset: {len(y_train)} training and {len(y_test)} test images of 8x8 pixels", flush=True)

    rng = np.random.default_rng(a.seed)
    params = {
        "w1": rng.normal(0, 0.1, (64, a.hidden)).astype(np.float32), "b1": np.zeros(a.hidden, np.float32),
        "w2": rng.normal(0, 0.1, (a.hidden, 10)).astype(np.float32), "b2": np.zeros(10, np.float32),
    }
    best = -1.0
    history = []
    with open(os.path.join(a.logs_directory, "metrics.csv"), "w") as metrics:
        metrics.write("epoch,loss,train_accuracy,test_loss,test_accuracy\n")
        for epoch in range(1, a.epochs + 1):
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
            metrics.write(f"{epoch},{loss:.5f},{acc:.5f},{test_loss:.5f},{test_acc:.5f}\n")
            metrics.flush()
            print(f"epoch {epoch:3d}/{a.epochs}  loss {loss:.4f}  accuracy {acc:.3f}  "
                  f"test_loss {test_loss:.4f}  test_accuracy {test_acc:.3f}  ({time.time() - t0:.2f}s)", flush=True)
            np.savez(os.path.join(a.output_directory, "last.npz"), epoch=epoch, **params)
            if test_acc > best:
                best = test_acc
                np.savez(os.path.join(a.output_directory, "best.npz"), epoch=epoch, **params)

    np.savez(os.path.join(a.output_directory, "model.npz"), **params)
    with open(os.path.join(a.output_directory, "metrics.json"), "w") as f:
        json.dump({"best_test_accuracy": best, "epochs": history}, f, indent=1)
    print(f"done: best test accuracy {best:.3f}; model in {a.output_directory}/model.npz", flush=True)


if __name__ == "__main__":
    main()
