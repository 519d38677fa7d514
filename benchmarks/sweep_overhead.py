"""The overhead a sweep adds per trial beyond the training itself, on a reused machine (goal: under
1 s), side by side with its peer: a plain `trainrig start` of the same training on a machine
already up (what a script looping over parameters would do by hand), and, for scale, a whole
`trainrig run` (up, start, download, down) per training.

Each figure is the wall time minus the training process's own run time (the machine's `training`
phase to the next, from the run's status), so a slower or faster training changes nothing. A
sweep trial's wall time runs from Optuna's ask to its tell and includes the download of its outputs
and the removal of its folder on the machine; `trainrig start`'s includes the Python start-up of
the command. The training: examples/sweep (8 steps of 0.05 s). Rounds alternate the three.

Usage: python -m benchmarks.sweep_overhead [--rounds 3] [--trials 4]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, TRAINRIG, median, trainrig_env
from runner.remote.status import Status
from runner.sweep.trials import training_seconds

CODE = str(ROOT / "examples" / "sweep")


def _trainrig(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TRAINRIG, *args], env=env, check=True, capture_output=True, text=True)


def _overhead_of(env: dict[str, str], run_id: str, wall: float) -> float:
    status = json.loads(_trainrig(env, "status", run_id, "--json").stdout)["status"]
    took = training_seconds(Status.from_dict(status))
    assert took is not None, f"run {run_id} has no training phase"
    return wall - took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=4, help="trials per sweep round (one machine)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trainrig-bench-"))
    env = trainrig_env(work / "home")
    out = str(work / "out")
    rows: dict[str, list[float]] = {"sweep trial (reused machine)": [], "trainrig start (machine up)": [],
                                    "trainrig run (a machine per training)": []}
    try:
        _trainrig(env, "up", CODE, "--dataset-name", "peer")
        _trainrig(env, "start", "sweep-peer")  # warm-up: the venv cache and the code on the machine
        for r in range(a.rounds):
            done = _trainrig(env, "sweep", CODE, "--dataset-name", f"r{r}", "--param", "lr=log:1e-4..1e-1",
                             "--trials", str(a.trials), "--objective", "val_loss:min", "--no-prune", "--outputs", out,
                             "--json")
            for t in json.loads(done.stdout)["ran"]:
                rows["sweep trial (reused machine)"].append(t["seconds"] - t["training_s"])
            for _ in range(a.trials):
                t0 = time.perf_counter()
                _trainrig(env, "start", "sweep-peer")
                rows["trainrig start (machine up)"].append(_overhead_of(env, "sweep-peer", time.perf_counter() - t0))
            t0 = time.perf_counter()
            _trainrig(env, "run", CODE, "--dataset-name", f"whole{r}", "--outputs", out)
            wall = time.perf_counter() - t0
            folder = max((work / "out").glob(f"*_sweep_whole{r}"))
            manifest = json.loads((folder / "run.json").read_text())
            took = training_seconds(Status(run_id=manifest["run_id"], phases=[[p["phase"], p["at"]] for p in manifest["phases"]]))
            if took is not None:
                rows["trainrig run (a machine per training)"].append(wall - took)
        _trainrig(env, "down", "sweep-peer", "--discard-outputs")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peer = "trainrig start (machine up)"
    print("\nper-training overhead beyond the training itself (examples/sweep, local target)")
    for name, xs in rows.items():
        if not xs:
            print(f"  {name:40} no figure (see the run's status)")
            continue
        ratio = "" if name == peer else f"  ratio to {peer}: {median(xs) / median(rows[peer]):.2f}x"
        print(f"  {name:40} median {median(xs) * 1000:7.0f} ms  (n={len(xs)}, min {min(xs) * 1000:.0f}, "
              f"max {max(xs) * 1000:.0f}){ratio}")
    goal = median(rows["sweep trial (reused machine)"])
    print(f"goal: a sweep trial's overhead under 1 s: {'met' if goal < 1.0 else 'NOT met'} ({goal:.3f} s)")


if __name__ == "__main__":
    main()
