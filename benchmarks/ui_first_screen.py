"""The terminal UI's first screen with 200 runs in the journal (goal: under 0.5 s).

Two figures: in-process, from the app's start to the runs table holding all 200 rows (Textual's
headless driver, so the drawing is measured and the interpreter start is not); and in a real
terminal (tmux, 80x24), from starting `trainrig` to the last run on screen, interpreter and imports
included, next to `python -c 'import textual.app'` alone. `--sweeps K`: the last 10*K runs are the
trials of K sweeps of 10 (grouped under a row each). Usage: python -m benchmarks.ui_first_screen"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.common import ROOT, report, timed
from runner.states import Outcome, RunState

RUNS = 200
# No STARTED run: nothing to follow, no machine asked.
STATES = (RunState.FINISHED, RunState.DESTROYED, RunState.UP, RunState.DESTROYED)


SWEEP_SIZE = 10


def fill(home: Path, runs: int = RUNS, sweeps: int = 0) -> list[str]:
    from infra.spec import EntryPoint, RunSpec
    from runner.journal import Journal, RunRecord

    journal, ids = Journal(home), []
    for i in range(runs):
        spec = RunSpec(code_name=f"model{i:03d}", dataset_name="data", code_path="/tmp/x", entry=EntryPoint(module="train"))
        rec = RunRecord(spec=spec, state=STATES[i % len(STATES)], outcome=Outcome.SUCCEEDED if i % 4 != 2 else None)
        rec.mark("provisioning")
        if i >= runs - sweeps * SWEEP_SIZE:
            rec.sweep = f"sweep{(runs - 1 - i) // SWEEP_SIZE}-data"
        journal.save(rec)
        ids.append(spec.run_id)
    return ids


async def in_process(home: Path, sweeps: int = 0) -> float:
    from runner.journal import Journal
    from tui.app import TrainrigApp
    from tui.widgets.runs_table import RunsTable

    t0 = time.perf_counter()
    app = TrainrigApp(journal=Journal(home))
    async with app.run_test(size=(80, 24)) as pilot:
        while True:
            tables = app.screen.query(RunsTable)
            if tables and tables.first().row_count == RUNS + sweeps:  # a row per sweep besides its runs
                await pilot.pause()  # one more frame: the rows drawn
                elapsed = time.perf_counter() - t0
                break
            await asyncio.sleep(0.005)
        await pilot.press("q")
    return elapsed


def in_tmux(home: Path, last: str) -> float:
    tmux = ["tmux", "-L", f"trainrig-bench-{uuid.uuid4().hex[:8]}"]
    cmd = f"TRAINRIG_HOME={shlex.quote(str(home))} PYTHONPATH={shlex.quote(str(ROOT))} {shlex.quote(sys.executable)} -m tui.cli"
    t0 = time.perf_counter()
    subprocess.run([*tmux, "new-session", "-d", "-s", "b", "-x", "80", "-y", "24", cmd], check=True,
                   env=dict(os.environ, TERM="xterm-256color"))
    try:
        while True:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True).stdout
            if f"{RUNS} runs" in screen and "model000-data" in screen:
                return time.perf_counter() - t0
            time.sleep(0.01)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--sweeps", type=int, default=0, help=f"sweeps of {SWEEP_SIZE} trials among the {RUNS} runs")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        ids = fill(home, sweeps=a.sweeps)
        rows = [("first screen, in-process (headless)", [asyncio.run(in_process(home, a.sweeps)) for _ in range(a.rounds)])]
        if shutil.which("tmux"):
            rows.append(("`trainrig` in tmux to 200 runs on screen", [in_tmux(home, ids[-1]) for _ in range(a.rounds)]))
        else:
            print("tmux is not installed: the real-terminal figure is skipped")
        rows.append(("python -c 'import textual.app'", [timed([sys.executable, "-c", "import textual.app"])
                                                        for _ in range(a.rounds)]))
        report(f"the UI's first screen with {RUNS} runs" + (f", {a.sweeps * SWEEP_SIZE} of them in {a.sweeps} sweeps" if a.sweeps else ""),
               rows, rows[0][0])


if __name__ == "__main__":
    main()
