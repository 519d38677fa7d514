"""From a training script's `trainrig_helpers.log_metrics(...)` to the moment trainrig hands that
point to its caller (a MetricPoint event from the follower), local target, side by side with the
peer: OpenSSH's own `ssh host tail -n0 -F file` over a real OpenSSH sshd on loopback, reading the
same kind of JSON line that a writer process appends to a file.

Each line carries its own write time (`wall_time`, as the helper writes it); the latency of a
point is the receiver's clock at hand-over minus that time, on the same machine clock. trainrig is
followed in-process through the Lifecycle API (`Lifecycle.start` follows the run it starts); the
peer's lines are read from the ssh client's stdout as they come. Both write times are rounded to
the millisecond (as the helper writes them), so sub-millisecond figures are within that rounding.
`--poll` adds a row for trainrig with its machine-side follower forced onto the fallback poll
(TRAINRIG_FOLLOW_POLL=1, every 10 ms) instead of inotify: before and after, in one run.

Usage: python -m benchmarks.metrics_latency [--points 40] [--interval 0.1] [--poll]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import TRAINRIG, median, trainrig_env
from tests.sshd import SshdUnavailable, start_sshd

# The training: N points through the real helper (which stamps wall_time). The gaps are drawn from
# 0.75-1.25x `interval`, the same seeded draws on both sides: a fixed 100 ms would lock onto the
# fallback's 10 ms poll (--poll) and sample one phase of it only.
TRAIN = """import random, time
import trainrig_helpers as th
n, interval = {points}, {interval}
pace = random.Random(1)
for i in range(n):
    th.log_metrics(i, loss=1.0 / (i + 1))
    time.sleep(interval * pace.uniform(0.75, 1.25))
"""

# The peer's writer: the same kind of line, stamped the same way (time.time() rounded to the ms).
WRITER = """import json, random, sys, time
path, n, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pace = random.Random(1)
with open(path, "a") as f:
    for i in range(n):
        f.write(json.dumps({"step": i, "wall_time": round(time.time(), 3), "values": {"loss": 1.0 / (i + 1)}}) + "\\n")
        f.flush()
        time.sleep(interval * pace.uniform(0.75, 1.25))
"""


def p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10, method="inclusive")[-1] if len(xs) > 1 else xs[0]


def bench_trainrig(work: Path, env: dict[str, str], points: int, interval: float, poll: bool = False) -> list[float]:
    code = work / "metricsbench"
    code.mkdir(exist_ok=True)
    (code / "train.py").write_text(TRAIN.format(points=points, interval=interval))
    # The local machine's commands (the follower among them) inherit the environment of the server
    # that `up` starts (and of this process, should the Lifecycle start it again).
    env = dict(env, TRAINRIG_FOLLOW_POLL="1" if poll else "0")
    os.environ["TRAINRIG_FOLLOW_POLL"] = env["TRAINRIG_FOLLOW_POLL"]
    name = "poll" if poll else "local"
    subprocess.run([*TRAINRIG, "up", str(code), "--dataset-name", name], env=env, check=True, capture_output=True)
    run_id = f"metricsbench-{name}"
    os.environ["TRAINRIG_HOME"] = env["TRAINRIG_HOME"]  # the in-process Lifecycle's journal
    from runner.events import MetricPoint
    from runner.lifecycle import Lifecycle

    lat: list[float] = []

    def on_event(event) -> None:  # type: ignore[no-untyped-def]
        if isinstance(event, MetricPoint):
            lat.append(time.time() - event.wall_time)

    try:
        status = asyncio.run(Lifecycle(on_event=on_event).start(run_id))
        if status is None or status.outcome != "succeeded":
            raise SystemExit(f"the benchmark's training did not succeed: {status}")
    finally:
        subprocess.run([*TRAINRIG, "down", run_id], env=env, capture_output=True)
    return lat


def bench_peer(work: Path, points: int, interval: float) -> list[float]:
    sshd = start_sshd(work / "sshd")
    path = work / "peer" / "metrics.jsonl"
    path.parent.mkdir()
    path.write_text("")
    ssh = subprocess.Popen(["ssh", *sshd.ssh_args(), f"{sshd.user}@127.0.0.1", f"exec tail -n0 -F {shlex.quote(str(path))}"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert ssh.stdout is not None
    try:
        # tail -n0 shows only what comes after it opened the file: probe until a line comes back.
        end = time.monotonic() + 20
        while True:
            with open(path, "a") as f:
                f.write('{"probe": true}\n')
            if select.select([ssh.stdout], [], [], 0.2)[0] and b"probe" in ssh.stdout.readline():
                break
            if time.monotonic() > end or ssh.poll() is not None:
                raise SystemExit("ssh ... tail -F over the local sshd never echoed a line")
        lat: list[float] = []

        def read() -> None:
            for line in ssh.stdout:  # type: ignore[union-attr]
                now = time.time()
                try:
                    point = json.loads(line)
                except ValueError:
                    continue
                if "wall_time" in point:
                    lat.append(now - point["wall_time"])
                    if len(lat) == points:
                        return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        subprocess.run([sys.executable, "-c", WRITER, str(path), str(points), str(interval)], check=True)
        reader.join(5)
        return list(lat)
    finally:
        ssh.terminate()
        ssh.wait(10)
        sshd.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=40)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--poll", action="store_true", help="also trainrig with the follower's fallback poll forced")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trainrig-bench-"))
    env = trainrig_env(work / "home")
    try:
        rows: list[tuple[str, list[float]]] = [
            ("trainrig (local target, Lifecycle follower)", bench_trainrig(work, env, a.points, a.interval))]
        if a.poll:
            rows.append(("trainrig, follower's 10 ms poll forced", bench_trainrig(work, env, a.points, a.interval, poll=True)))
        try:
            rows.append(("ssh host tail -n0 -F (OpenSSH sshd, peer)", bench_peer(work, a.points, a.interval)))
        except SshdUnavailable as e:
            print(f"no peer: {e}; trainrig's figures alone")
        print(f"\nmetric point latency: log_metrics write -> handed to the caller ({a.points} points, ~{a.interval * 1000:.0f} ms apart)")
        meds = {name: median(xs) for name, xs in rows}
        for name, xs in rows:
            print(f"  {name:44} median {meds[name] * 1000:6.1f} ms  p90 {p90(xs) * 1000:6.1f} ms  (n={len(xs)})")
        peer = rows[-1][0] if rows[-1][0].startswith("ssh ") else None
        for name, _ in rows:
            if peer and name != peer:
                p = meds[peer]
                print(f"  ratio to the peer's median: {meds[name] / p:5.1f}x  {name}" if p > 0 else "  ratio: peer median is 0")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
