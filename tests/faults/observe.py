"""What a fault test watches to know where a run is (a user could look at the same places)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Callable

# A training that counts steps, saving a checkpoint each and one last on SIGTERM (a spot machine's
# notice), and resumes after the last checkpoint its store gave back: the spot tests' training.
_CHECKPOINTING = """
import os, signal, sys, time
import trainrig_helpers as th

stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
out = th.directories().output
last = th.latest_checkpoint(suffix=".txt")
step = int(open(last.path).read()) + 1 if last else 0
print(f"resumed after step {last.step}" if last else "fresh start", flush=True)
while step < STEPS:
    time.sleep(STEP_S)
    with open(os.path.join(out, f"step-{step:03d}.txt"), "w") as f:
        f.write(str(step))
    th.save_checkpoint(step, lambda p: open(p, "w").write(str(step)), suffix=".txt")
    print(f"step {step}", flush=True)
    if stop:
        print(f"SIGTERM: last checkpoint {step}", flush=True)
        sys.exit(143)
    step += 1
print("done", flush=True)
"""


def checkpointing_training(steps: int, step_s: float) -> str:
    return _CHECKPOINTING.replace("STEPS", str(steps)).replace("STEP_S", str(step_s))


def steps_in(text: str) -> list[int]:
    return [int(m) for m in re.findall(r"^step (\d+)$", text, re.M)]


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"never saw: {what}"
        time.sleep(0.05)


def kill9(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie (not reaped yet) is gone too
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def tree_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` so far (finished or not; files may vanish meanwhile)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total
