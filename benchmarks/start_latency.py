"""From `trainrig start` on a provisioned machine (unchanged code) to the first training log line on
the user's screen, for the local target and the ssh target (OpenSSH sshd on loopback), side by
side with the floor: OpenSSH's own `ssh host python3 train.py` to the same sshd, which uploads
nothing, checks nothing and starts no supervisor.

Usage: python -m benchmarks.start_latency [--rounds 7]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import TRAINRIG, report, time_to_first_line, trainrig_env
from tests.sshd import start_sshd

TRAIN = 'print("first line", flush=True)\n'


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trainrig-bench-"))
    env = trainrig_env(work / "home")
    sshd = start_sshd(work / "sshd")
    try:
        code = work / "quick"
        code.mkdir()
        (code / "train.py").write_text(TRAIN)
        ssh_host = ["--target", "ssh", "--host", f"{sshd.user}@127.0.0.1:{sshd.port}", "--identity", str(sshd.client_key),
                    "--known-hosts", str(sshd.known_hosts)]
        subprocess.run([*TRAINRIG, "up", str(code), "--dataset-name", "local"], env=env, check=True, capture_output=True)
        subprocess.run([*TRAINRIG, "up", str(code), "--dataset-name", "sshd", *ssh_host], env=env, check=True, capture_output=True)
        floor = ["ssh", *sshd.ssh_args(), f"{sshd.user}@127.0.0.1", f"cd {code} && exec python3 -u train.py"]
        rows: dict[str, list[float]] = {"trainrig start (local target)": [], "trainrig start (ssh target, sshd)": [],
                                        "ssh host python3 train.py (floor)": []}
        cmds = {
            "trainrig start (local target)": [*TRAINRIG, "start", "quick-local"],
            "trainrig start (ssh target, sshd)": [*TRAINRIG, "start", "quick-sshd"],
            "ssh host python3 train.py (floor)": floor,
        }
        for cmd in cmds.values():  # warm-up: the first start builds the venv and sends the code
            time_to_first_line(cmd, env=env)
        for r in range(a.rounds):
            for name, cmd in (list(cmds.items()) if r % 2 == 0 else list(reversed(cmds.items()))):
                rows[name].append(time_to_first_line(cmd, env=env))
        report("time to the first training log line, unchanged code, machine already up", list(rows.items()),
               "ssh host python3 train.py (floor)")
        for run in ("quick-local", "quick-sshd"):
            subprocess.run([*TRAINRIG, "down", run], env=env, check=True, capture_output=True)
    finally:
        sshd.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
