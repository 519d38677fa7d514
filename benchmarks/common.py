"""Shared bits of the benchmarks: timing, medians, a private trainrig state folder."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def timed_output(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, out


def time_to_first_line(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    """Seconds from starting `cmd` to the first line on its stdout; then waits for it to end."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdout is not None
    line = p.stdout.readline()
    elapsed = time.perf_counter() - t0
    p.communicate()
    if not line or p.returncode != 0:
        raise SystemExit(f"{cmd[:3]} printed no line or failed (exit {p.returncode})")
    return elapsed


def trainrig_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TRAINRIG_HOME"] = str(home)
    env["TRAINRIG_SSH_CONFIG"] = ""  # a benchmark never writes the user's ~/.ssh/config
    env["PYTHONPATH"] = str(ROOT)
    return env


TRAINRIG = [sys.executable, "-m", "tui.cli"]


def report(title: str, rows: list[tuple[str, list[float]]], peer: str) -> None:
    """Print medians and each row's ratio to the peer row."""
    print(f"\n{title}")
    meds = {name: median(xs) for name, xs in rows}
    for name, xs in rows:
        ratio = meds[name] / meds[peer] if meds[peer] else float("nan")
        print(f"  {name:44} median {meds[name] * 1000:8.1f} ms  (n={len(xs)}, min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f})"
              + ("" if name == peer else f"  ratio to {peer}: {ratio:.2f}x"))
