"""`trainrig --help` start-up time, next to the bare interpreter start (`python -c pass`) and to what
importing the SSH library alone would cost (what --help avoids). Usage: python -m benchmarks.help_time"""

from __future__ import annotations

import argparse
import shutil
import sys

from benchmarks.common import ROOT, report, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=21)
    a = ap.parse_args()
    exe = shutil.which("trainrig")
    cmds = {
        "trainrig --help" + ("" if exe else " (python -m tui.cli)"): [exe, "--help"] if exe else [sys.executable, "-m", "tui.cli", "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import asyncssh'": [sys.executable, "-c", "import asyncssh"],
    }
    rows: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(a.rounds):
        for name, cmd in cmds.items():
            rows[name].append(timed(cmd, cwd=ROOT))
    report("start-up time", list(rows.items()), "python -c pass")


if __name__ == "__main__":
    main()
