"""`trainrig logs RUN` streams the log through: its memory stays bounded however long the log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOG_MB = 200
PRINTS_A_LONG_LOG = f"""
import sys
line = b"%s\\n" % (b"x" * 99)
for i in range({LOG_MB} * 10):
    sys.stdout.buffer.write(line * 1000)
"""


# Runs the command and writes its peak memory (KiB). A small process of its own starts it: a child
# forked straight from pytest would count pytest's own peak (Linux keeps the larger across exec).
MEASURES = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_200_mb_log_is_printed_whole_with_bounded_memory(env, tmp_path, state_home):
    code = tmp_path / "chatty"
    code.mkdir()
    (code / "train.py").write_text(PRINTS_A_LONG_LOG)
    run = [sys.executable, "-m", "tui.cli"]
    assert subprocess.run(run + ["up", str(code), "--dataset-name", "none"], env=env, capture_output=True).returncode == 0
    try:
        started = subprocess.run(run + ["start", "chatty-none"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, timeout=300)
        assert started.returncode == 0, started.stderr
        with open(tmp_path / "printed", "wb") as out:
            p = subprocess.run([sys.executable, "-c", MEASURES, str(tmp_path / "peak"), *run, "logs", "chatty-none"],
                               env=env, stdout=out, stderr=subprocess.PIPE, timeout=300)
        assert p.returncode == 0, p.stderr
        log = state_home / "runs" / "chatty-none" / "sandbox" / "runs" / "chatty-none" / "logs" / "train.log"
        assert (tmp_path / "printed").stat().st_size == log.stat().st_size == LOG_MB * 1_000_000
        assert _same_bytes(tmp_path / "printed", log)
        peak_mb = int((tmp_path / "peak").read_text()) / 1024  # KiB on Linux
        assert peak_mb < 150, f"`trainrig logs` peaked at {peak_mb:.0f} MB for a {LOG_MB} MB log"
    finally:
        subprocess.run(run + ["down", "chatty-none", "-y"], env=env, capture_output=True)


def _same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb") as f, open(b, "rb") as g:
        while True:
            x, y = f.read(1 << 20), g.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True
