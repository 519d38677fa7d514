"""The CPU that following idle runs costs: twenty runs on the local target whose trainings sleep,
each followed by a `trainrig logs RUN -f`, measured over ~10 s: the machine-side followers (the
tools' `follow`) and the clients, before (the fallback poll every 10 ms, forced by
TRAINRIG_FOLLOW_POLL=1 in the environment the local machine's commands inherit) and after
(inotify), one set of runs after the other in one invocation. Every run is torn down at the end
(`down --stop --discard-outputs`), and no process of it is left.

CPU time is each process's utime+stime from /proc/<pid>/stat; since that counts in clock ticks
(10 ms), a process's threads' /proc/<pid>/task/*/schedstat (nanoseconds on the CPU) is used where
the kernel has it, so a follower that wakes once a second still shows something.

Usage: python -m benchmarks.idle_followers [--runs 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import TRAINRIG, trainrig_env
from runner.remote.procs import command_lines
from tests import leftovers  # marks this process's environment: every process started below carries it

TRAIN = 'import time\nprint("ready", flush=True)\ntime.sleep(3600)\n'
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time the process used so far (all its threads)."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / TICK  # utime, stime


def followers_of(run_dir: str) -> list[int]:
    """The machine-side follower of `run_dir` (the tools' `follow`, exec'd by the login shell)."""
    return [pid for pid, words in command_lines()
            if any(w.endswith(b"launch.py") for w in words) and b"follow" in words and run_dir.encode() in words]


def measure(work: Path, env: dict[str, str], mode: str, runs: int, seconds: float) -> dict[str, list[float]]:
    """Start `runs` idle runs in `mode` ("poll" or "inotify"), follow each, measure; tear them down."""
    home = Path(env["TRAINRIG_HOME"])
    env = dict(env, TRAINRIG_FOLLOW_POLL="1" if mode == "poll" else "0")
    code = work / f"idle{mode}"
    code.mkdir()
    (code / "train.py").write_text(TRAIN)
    rids = [f"idle{mode}-n{i:02d}" for i in range(runs)]

    def up_and_start(rid: str) -> None:
        name = rid.split("-", 1)[1]
        subprocess.run([*TRAINRIG, "up", str(code), "--dataset-name", name], env=env, check=True, capture_output=True)
        subprocess.run([*TRAINRIG, "start", rid, "--no-follow"], env=env, check=True, capture_output=True)

    clients: list[subprocess.Popen] = []
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(up_and_start, rids))
        for rid in rids:
            clients.append(subprocess.Popen([*TRAINRIG, "logs", rid, "-f"], env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True))
        for rid, c in zip(rids, clients):
            assert c.stdout is not None
            if c.stdout.readline() != "ready\n":
                raise SystemExit(f"`trainrig logs {rid} -f` never showed the training's first line")
        followers = []
        for rid in rids:
            found = followers_of(str(home / "runs" / rid / "sandbox" / "runs" / rid))
            if len(found) != 1:
                raise SystemExit(f"expected one machine-side follower of {rid}, found {found}")
            followers += found
        time.sleep(1.0)  # past the start-up of the last ones
        groups = {"followers": followers, "clients": [c.pid for c in clients]}
        before = {k: [cpu_seconds(p) for p in pids] for k, pids in groups.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        return {k: [(cpu_seconds(p) - b) / elapsed * 100 for p, b in zip(pids, before[k])] for k, pids in groups.items()}
    finally:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda rid: subprocess.run([*TRAINRIG, "down", rid, "--stop", "--discard-outputs"], env=env,
                                                     capture_output=True), rids))
        for c in clients:  # each ends once its run is stopped
            try:
                c.wait(30)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trainrig-bench-"))
    env = trainrig_env(work / "home")
    before = leftovers.running()
    try:
        rows = {mode: measure(work, env, mode, a.runs, a.seconds) for mode in ("poll", "inotify")}
    finally:
        left = leftovers.left_by_test(before)
        if left:
            leftovers.kill(left)
            print("left running after down (killed now):\n  " + "\n  ".join(sorted(map(str, left))))
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nCPU of following {a.runs} idle runs (local target, `trainrig logs RUN -f` each), % of one core over {a.seconds:.0f} s")
    print(f"  {'':34} {'per follower':>13} {'followers':>10} {'per client':>11} {'clients':>8} {'total':>7}")
    totals = {}
    for mode, label in (("poll", "before: 10 ms poll (forced)"), ("inotify", "after: inotify")):
        f, c = rows[mode]["followers"], rows[mode]["clients"]
        totals[mode] = sum(f) + sum(c)
        print(f"  {label:34} {sum(f) / len(f):12.3f}% {sum(f):9.2f}% {sum(c) / len(c):10.3f}% {sum(c):7.2f}% {totals[mode]:6.2f}%")
    fp, fi = sum(rows["poll"]["followers"]), sum(rows["inotify"]["followers"])
    print(f"  ratio poll/inotify: followers {fp / fi:.0f}x, total {totals['poll'] / totals['inotify']:.1f}x"
          if fi > 0 and totals["inotify"] > 0 else "  ratio: inotify's followers used no measurable CPU")
    if left:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
