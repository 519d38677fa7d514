"""Pulling a dataset from S3 (moto's server on loopback, in its own process): `trainrig dataset pull`
vs `aws s3 sync`, side by side; then an unchanged re-sync of 10,000 objects (work beyond the
listing), and peak memory against the number of files.

Usage: python -m benchmarks.s3_pull_vs_awscli [--rounds 3] [--small 5000]
Needs the AWS CLI (`pip install -e '.[bench]'`) and moto's server (`.[test]`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import ROOT, report
from tests.buckets import free_port


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, list[float]] = {}


def run_measured(cmd: list[str], env: dict[str, str], server_pid: int | None = None, label: str = "") -> tuple[float, int]:
    """(seconds, peak resident memory in MB) of one child process, its memory read from /proc while
    it runs (the peak after exec, not the pages a fork shares with this process). With `label`,
    the server's and the client's CPU seconds are recorded in CPU[label]."""
    t0 = time.perf_counter()
    server0 = cpu_seconds(server_pid) if server_pid else 0.0
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    client = 0.0
    while p.poll() is None:
        peak = max(peak, _hwm_kb(p.pid))
        try:
            client = cpu_seconds(p.pid)
        except (OSError, IndexError):
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    if label and server_pid:
        CPU.setdefault(label + " server", []).append(cpu_seconds(server_pid) - server0)
        CPU.setdefault(label + " client", []).append(client)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed: {p.stderr.read().decode()[-500:] if p.stderr else ''}")
    return elapsed, peak // 1024


def populate(env: dict[str, str], bucket: str, prefix: str, small: int, large: int) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    big = os.urandom(32 << 20)

    def put(i: int) -> None:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/small/{i // 100:03d}/img_{i:05d}.jpg", Body=os.urandom(1000 + (i * 37) % 7000))

    with ThreadPoolExecutor(16) as ex:
        list(ex.map(put, range(small)))
    for j in range(large):
        s3.upload_fileobj(__import__("io").BytesIO(big[j:] + big[:j]), bucket, f"{prefix}/large/shard_{j}.bin")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--workdir")
    a = ap.parse_args()
    aws = shutil.which("aws")
    if not aws:
        raise SystemExit("the AWS CLI is not installed: pip install -e '.[bench]'")
    work = Path(tempfile.mkdtemp(prefix="trainrig-bench-", dir=a.workdir))
    port = free_port()
    env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(ROOT),
               TRAINRIG_HOME=str(work / "home"))
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import boto3

        for _ in range(100):
            try:
                boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="testing",
                             aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket="bench")
                break
            except Exception:
                time.sleep(0.1)
        os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
        populate(env, "bench", "data", a.small, 3)
        trainrig = [sys.executable, "-m", "tui.cli", "dataset", "pull"]
        awscli = [aws, "s3", "sync", "--only-show-errors", "--endpoint-url", env["AWS_ENDPOINT_URL"]]
        rows: dict[str, list[float]] = {"trainrig dataset pull": [], "aws s3 sync": []}
        mem: dict[str, int] = {}
        for r in range(a.rounds):
            cmds = {
                "trainrig dataset pull": [*trainrig, "s3://bench/data", str(work / f"t{r}")],
                "aws s3 sync": [*awscli, "s3://bench/data", str(work / f"a{r}")],
            }
            for name in (list(cmds) if r % 2 == 0 else list(reversed(cmds))):
                seconds, rss = run_measured(cmds[name], env, server.pid, name)
                rows[name].append(seconds)
                mem[name] = max(mem.get(name, 0), rss)
            shutil.rmtree(work / f"t{r}")
            shutil.rmtree(work / f"a{r}")
        print(f"dataset: {a.small} small objects (1-8 KB) + 3 x 32 MB, moto S3 server on loopback")
        report("fresh pull (speed-up = 1 / ratio)", list(rows.items()), "aws s3 sync")
        print("  peak memory: " + ", ".join(f"{k} {v} MB" for k, v in mem.items()))
        from benchmarks.common import median

        for label in rows:
            print(f"  {label:27} CPU: moto server {median(CPU[label + ' server']):.1f} s, client {median(CPU[label + ' client']):.1f} s")
        # moto is Python: one core at most. Even a client that cost nothing could not finish
        # before the server had spent its own CPU on the requests.
        bound = median(rows["aws s3 sync"]) / min(median(CPU[k + " server"]) for k in rows)
        print(f"  best speed-up any client could reach against this server: {bound:.2f}x "
              "(aws s3 sync's time / the server's CPU for the same objects)")

        # 10,000 unchanged objects: the listing alone, then the whole re-sync, in one process.
        populate(env, "bench", "many", 10_000, 0)
        probe = """
import time, sys
from runner.remote.location import parse_location
from runner.remote.stores import open_store
from runner.remote.sync import pull
store = open_store(parse_location("s3://bench/many"))
pull(store, sys.argv[1], sys.argv[2])
t = time.perf_counter(); n = sum(1 for _ in store.objects()); listing = time.perf_counter() - t
t = time.perf_counter(); r = pull(store, sys.argv[1], sys.argv[2]); total = time.perf_counter() - t
assert r.files_copied == 0 and n == 10000
print(listing, total)
"""
        out = subprocess.run([sys.executable, "-c", probe, str(work / "many"), str(work / "many.idx")], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        listing, total = float(out[0]), float(out[1])
        print(f"\nunchanged re-sync of 10,000 objects: listing {listing * 1000:.0f} ms, whole re-sync {total * 1000:.0f} ms, "
              f"work beyond the listing {(total - listing) * 1000:.0f} ms")
        again = {"trainrig dataset pull": [], "aws s3 sync": []}
        for name, cmd in (("trainrig dataset pull", [*trainrig, "s3://bench/many", str(work / "many")]),
                          ("aws s3 sync", [*awscli, "s3://bench/many", str(work / "many")])):
            for _ in range(3):
                again[name].append(run_measured(cmd, env)[0])
        report("unchanged re-sync of 10,000 objects, whole command", list(again.items()), "aws s3 sync")
        # memory against the number of files: 1,000 vs 10,000 objects pulled fresh
        small_mem = run_measured([*trainrig, "s3://bench/data/small/000", str(work / "m1")], env)[1]
        big_mem = run_measured([*trainrig, "s3://bench/many", str(work / "m2")], env)[1]
        print(f"\npeak memory of trainrig dataset pull: 100 objects {small_mem} MB, 10,000 objects {big_mem} MB")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
