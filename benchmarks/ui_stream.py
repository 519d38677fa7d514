"""The run screen under a flood: 100,000 log lines a second for 10 s (goal: key press to redraw under
100 ms; memory bounded).

A thread hands the app LogChunks the way a follower does (the same RunEvent message and handler),
1,000 lines every 10 ms on a fixed schedule, lines like a training's (numbers, colours, a `\\r`
progress bar now and then). Meanwhile the pilot presses `l` (the chart's log scale) about every
100 ms; the latency of a press is from sending the key to the first frame the app composes after
the chart drew the new state (Textual's headless driver: composed, not written to a terminal).
RSS from /proc before and after the flood, and the peak.

With --real, a real training on the local target prints the lines (1,000 every 10 ms) and the
app's own follower streams them through the embedded SSH server, as a user would see it.
Usage: python -m benchmarks.ui_stream [--real] [--seconds 10] [--size 120x40]"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LINES_PER_S = 100_000
CHUNK_LINES = 1000  # a follower wakes and hands over what accumulated; at this rate, every 10 ms
PRESS_S = 0.1


def chunks(n: int = 20) -> list[bytes]:
    out = []
    for c in range(n):
        lines = []
        for i in range(CHUNK_LINES):
            step = c * CHUNK_LINES + i
            bar = f" {step % 100:3d}%|{'#' * (step % 10):10s}|\r" if i % 50 == 0 else ""
            lines.append(f"{bar}step {step:7d} loss {1.0 / (step + 1):.6f} lr 3.0e-04 tok/s 182345 "
                         f"\x1b[32mgrad_norm\x1b[0m {0.5 + (step % 7) / 10:.3f}\n")
        out.append("".join(lines).encode())
    return out


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stream(app, rid: str, seconds: float) -> None:  # type: ignore[no-untyped-def]
    from runner.events import LogChunk
    from tui.messages import RunEvent

    data, offset, k = chunks(), 0, 0
    every = CHUNK_LINES / LINES_PER_S
    t0 = time.perf_counter()
    while k * every < seconds:
        delay = t0 + k * every - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        chunk = data[k % len(data)]
        app.post_message(RunEvent(rid, LogChunk(offset, chunk)))
        offset += len(chunk)
        k += 1


TRAIN = """
import sys, time
lines_per_s, seconds, chunk = {rate}, {seconds}, {chunk}
rows = [" %3d%%|##########|\\r" % (i % 100) * (i % 50 == 0) + "step %7d loss %.6f lr 3.0e-04 tok/s 182345 "
        "\\x1b[32mgrad_norm\\x1b[0m %.3f\\n" % (i, 1.0 / (i + 1), 0.5 + (i % 7) / 10) for i in range(20 * chunk)]
blocks = ["".join(rows[k * chunk:(k + 1) * chunk]) for k in range(20)]
t0 = time.perf_counter()
for k in range(int(lines_per_s * seconds / chunk)):
    delay = t0 + k * chunk / lines_per_s - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    sys.stdout.write(blocks[k % 20])
    sys.stdout.flush()
"""


async def scenario(home: Path, seconds: float, size: tuple[int, int], real: bool) -> dict:
    from infra.spec import EntryPoint, RunSpec
    from runner.events import MetricPoint
    from runner.journal import Journal, RunRecord
    from tui.app import TrainrigApp
    from tui.messages import OpenRun, RunEvent
    from tui.screens.run import RunScreen
    from tui.widgets.metric_chart import MetricChart
    from tui.widgets.paged_log import PagedLog

    journal = Journal(home)
    total_lines = int(LINES_PER_S * seconds)
    if real:  # a training on the local target, followed through the embedded SSH server by the app itself
        code = home / "flood"
        code.mkdir()
        (code / "train.py").write_text(TRAIN.format(rate=LINES_PER_S, seconds=seconds, chunk=CHUNK_LINES))
        rid = "flood-none"
        cli = [sys.executable, "-m", "tui.cli"]
        subprocess.run([*cli, "up", str(code)], check=True, capture_output=True)
        subprocess.run([*cli, "start", rid, "--no-follow"], check=True, capture_output=True)
    else:
        spec = RunSpec(code_name="flood", dataset_name="data", code_path="/tmp/x", entry=EntryPoint(module="train"))
        journal.save(RunRecord(spec=spec, state="up"))  # not "started": no follower of its own, the thread is it
        rid = spec.run_id
    app = TrainrigApp(journal=journal, outputs_root=home / "out")
    try:
        async with app.run_test(size=size) as pilot:
            while rid not in app.views:
                await pilot.pause(0.05)
            for step in range(200):  # a curve, so the log scale shows
                app.post_message(RunEvent(rid, MetricPoint(step, 0.0, {"loss": 1.0 / (step + 1)}, step, step + 1)))
            app.post_message(OpenRun(rid))
            while not isinstance(app.screen, RunScreen):
                await pilot.pause(0.05)
            chart = app.screen.query_one(MetricChart)
            lines = app.log_lines(rid)
            while not chart.series or (real and lines.total == 0):
                await pilot.pause(0.01)
            if not real:
                await pilot.pause(0.5)
            result = await measure(app, pilot, chart, rid, seconds, real)
            while lines.total < total_lines and time.perf_counter() - result["t_start"] < seconds + 120:
                await asyncio.sleep(0.01)  # the app's queue drained: every line handled
            result["drained_s"] = time.perf_counter() - result.pop("t_start")
            result["cpu_s"] = time.process_time() - result.pop("cpu0")
            await asyncio.gather(*result.pop("presses_left"))  # press() waits for the app to be idle
            await pilot.pause(0.3)
            log = app.screen.query_one("#log", PagedLog)
            result.update(lines_handled=lines.total, rss_after_mb=rss_mb(), rss_peak_mb=rss_mb("VmHWM"),
                          widget_lines=len(log.lines), lines_sent=total_lines,
                          mirror_mb=(lines.mirror.stat().st_size / 1e6) if lines.mirror else 0.0)
            await pilot.press("q")
    finally:
        if real:
            subprocess.run([sys.executable, "-m", "tui.cli", "down", rid, "--stop", "--discard-outputs"], capture_output=True)
    return result


async def measure(app, pilot, chart, rid: str, seconds: float, real: bool) -> dict:  # type: ignore[no-untyped-def]
    """Press `l` every PRESS_S while the lines flood in; each press's time to the frame that shows it."""
    drawn: dict[bool, float] = {}  # when the chart drew which scale
    frames: list[float] = []  # when the app composed a frame
    render, display = chart.render, app._display

    def render_hook():  # type: ignore[no-untyped-def]
        drawn.setdefault(chart.log_scale, time.perf_counter())
        return render()

    def display_hook(screen, renderable):  # type: ignore[no-untyped-def]
        frames.append(time.perf_counter())
        return display(screen, renderable)

    chart.render, app._display = render_hook, display_hook
    rss_before = rss_mb()
    t_start, cpu0 = time.perf_counter(), time.process_time()
    thread = None
    if not real:
        thread = threading.Thread(target=stream, args=(app, rid, seconds), daemon=True)
        thread.start()
    latencies: list[float] = []
    missed = 0
    rss_at: dict[int, float] = {}  # second of the flood -> RSS: flat means bounded
    presses: list[asyncio.Task] = []
    while time.perf_counter() - t_start < seconds:
        tick = time.perf_counter()
        rss_at.setdefault(int(tick - t_start), rss_mb())
        want = not chart.log_scale
        drawn.pop(want, None)
        presses.append(asyncio.create_task(pilot.press("l")))  # the key is sent at once; press() then waits for idle
        shown = None
        while time.perf_counter() - tick < 2.0:
            seen = drawn.get(want)
            later = [f for f in frames if seen is not None and f >= seen]
            if later:
                shown = later[0]
                break
            await asyncio.sleep(0.001)
        frames.clear()
        if shown is None:
            missed += 1
        else:
            latencies.append(shown - tick)
        await asyncio.sleep(max(0.0, PRESS_S - (time.perf_counter() - tick)))
    if thread is not None:
        thread.join()
    sent_s = time.perf_counter() - t_start
    return {"presses_left": presses,
        "t_start": t_start, "cpu0": cpu0, "sent_s": sent_s, "rss_before_mb": rss_before, "rss_at": rss_at,
        "presses": len(latencies) + missed, "missed": missed,
        "median_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p90_ms": statistics.quantiles(latencies, n=10)[-1] * 1000 if len(latencies) > 1 else float("nan"),
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="120x40", help="the terminal's columns x rows")
    ap.add_argument("--real", action="store_true", help="a real training on the local target, followed by the app")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainrig-ui-stream-") as tmp:
        os.environ["TRAINRIG_HOME"] = tmp
        r = asyncio.run(scenario(Path(tmp), a.seconds, tuple(map(int, a.size.split("x"))), a.real))  # type: ignore[arg-type]
    how = "a real training on the local target, followed by the app" if a.real else "a thread posting RunEvents"
    print(f"{how}: {r['lines_sent']:,} lines in {r['sent_s']:.1f} s ({r['lines_sent'] / r['sent_s']:,.0f}/s); "
          f"{r['lines_handled']:,} handled {r['drained_s']:.1f} s after the start; mirror {r['mirror_mb']:.0f} MB; "
          f"widget {r['widget_lines']} lines")
    print(f"key press to redraw: median {r['median_ms']:.0f} ms, p90 {r['p90_ms']:.0f} ms, max {r['max_ms']:.0f} ms "
          f"({r['presses']} presses, {r['missed']} not shown within 2 s); goal < 100 ms")
    during = ", ".join(f"{s}s {mb:.0f}" for s, mb in sorted(r["rss_at"].items()))
    print(f"RSS: {r['rss_before_mb']:.0f} MB before, {r['rss_after_mb']:.0f} MB after, peak {r['rss_peak_mb']:.0f} MB "
          f"(during, MB: {during})")
    print(f"CPU of the app's process (the UI and {'its follower' if a.real else 'the streaming thread'}): "
          f"{r['cpu_s']:.1f} s in {r['drained_s']:.1f} s")


if __name__ == "__main__":
    main()
