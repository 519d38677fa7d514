"""Code upload: trainrig vs `rsync -a -e ssh`, to the same OpenSSH sshd on loopback, side by side.

The folder: 2,000 small source-like files in 40 folders plus one 100 MB incompressible file (a
checkpoint). Both tools run as a fresh process each time (connection set-up included). Rounds
alternate which tool goes first. Usage: python -m benchmarks.upload_vs_rsync [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, report, timed, timed_output
from tests.sshd import start_sshd

HELPER = """
import asyncio, sys, time
from runner import ssh, tools, transfer
from runner.events import ignore
from runner.ignore import IgnoreRules
from runner.machine import Machine

port, key, host_key, root, src, dest = sys.argv[1:7]
m = Machine("127.0.0.1", int(port), sys.argv[7], (host_key,), key, sys.argv[9], root, root + "/venvs")

async def main():
    t0 = time.perf_counter()
    async with ssh.connect(m) as conn:
        if sys.argv[8] == "install":
            await tools.install(conn, m)
            return
        r = await transfer.upload(conn, m, src, dest, dest + ".index.json", IgnoreRules(src).skip, "code", ignore)
    print(time.perf_counter() - t0)

asyncio.run(main())
"""


def make_folder(root: Path) -> None:
    rnd = random.Random(42)
    words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))) for _ in range(500)]
    for i in range(2000):
        d = root / f"pkg{i % 40:02d}"
        d.mkdir(parents=True, exist_ok=True)
        lines = [" ".join(rnd.choice(words) for _ in range(rnd.randint(3, 12))) for _ in range(rnd.randint(10, 120))]
        (d / f"module_{i:04d}.py").write_text("\n".join(lines) + "\n")
    with open(root / "checkpoint.bin", "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workdir", help="where to create the folders (default: the system's temporary folder)")
    a = ap.parse_args()
    if not shutil.which("rsync"):
        raise SystemExit("rsync is not installed (Debian: apt-get install rsync)")
    work = Path(tempfile.mkdtemp(prefix="trainrig-bench-", dir=a.workdir))
    try:
        sshd = start_sshd(work / "sshd")
        src = work / "src"
        make_folder(src)
        host_key = (work / "sshd" / "known_hosts").read_text().split(" ", 1)[1].strip()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        # The interpreter as the ssh target pins it at `up` (not a shim found on PATH).
        python = subprocess.run(["ssh", *sshd.ssh_args(), f"{sshd.user}@127.0.0.1", "python3 -c 'import sys; print(sys.executable)'"],
                                capture_output=True, text=True, check=True).stdout.strip()
        base = [sys.executable, "-c", HELPER, str(sshd.port), str(sshd.client_key), host_key, str(work / "root")]
        timed([*base, str(src), "-", sshd.user, "install", python], env=env)
        ssh_cmd = "ssh " + " ".join(sshd.ssh_args())
        inner = "trainrig, without Python start-up"
        full: dict[str, list[float]] = {"trainrig": [], inner: [], "rsync -a -e ssh": []}
        again: dict[str, list[float]] = {"trainrig": [], inner: [], "rsync -a -e ssh": []}
        for r in range(a.rounds):
            dests = {"trainrig": work / f"t{r}", "rsync -a -e ssh": work / f"r{r}"}
            cmds = {
                "trainrig": [*base, str(src), str(dests["trainrig"]), sshd.user, "upload", python],
                "rsync -a -e ssh": ["rsync", "-a", "-e", ssh_cmd, f"{src}/", f"{sshd.user}@127.0.0.1:{dests['rsync -a -e ssh']}/"],
            }
            order = list(cmds) if r % 2 == 0 else list(reversed(cmds))
            for rows in (full, again):
                for name in order:
                    if name == "trainrig":
                        # The helper prints its own time from connecting to done: the transfer
                        # without the interpreter's start and the imports.
                        total, out = timed_output(cmds[name], env=env)
                        rows[name].append(total)
                        rows[inner].append(float(out.strip().splitlines()[-1]))
                    else:
                        rows[name].append(timed(cmds[name], env=env))
            for d in dests.values():
                shutil.rmtree(d, ignore_errors=True)
        print(f"folder: 2,000 small files ({sum(p.stat().st_size for p in src.rglob('*.py')) / 1e6:.1f} MB) + 100 MB random; sshd on loopback")
        report("first upload (empty destination)", list(full.items()), "rsync -a -e ssh")
        report("unchanged re-upload", list(again.items()), "rsync -a -e ssh")
        sshd.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
