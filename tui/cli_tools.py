"""The verbs beside the run's lifecycle: down's questions, pulumi-env, logs --metrics, tensorboard,
dataset; and how a training's outcome becomes the exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tui.exit_codes import EXIT_OK


def outcome_exit(status, console, again: str = "") -> int:  # type: ignore[no-untyped-def]
    from runner.outcomes import report

    done = report(status, again or f"trainrig start {console.run_id}")
    for line in done.lines:
        console.say(line)
    return done.exit_code



def down(a: argparse.Namespace, run_id: str, life, console) -> int:  # type: ignore[no-untyped-def]
    """Without a terminal a refusal is final (exit 2, both ways out printed); on one, each refusal
    is asked about and its way out taken when the person says so."""
    import asyncio

    from runner.down_checks import OutputsNotDownloaded, TrainingGoing
    from runner.states import RunState

    ask = sys.stdin.isatty()
    if ask and not a.yes and life.journal.load(run_id).state != RunState.DESTROYED:
        if input(f"Destroy run {run_id} and everything on its machine? [y/N] ").strip().lower() not in ("y", "yes"):
            console.say("nothing destroyed.")
            return EXIT_OK
    stop, discard = a.stop, a.discard_outputs
    while True:
        try:
            asyncio.run(life.down(run_id, discard_outputs=discard, stop=stop))
            return EXIT_OK
        except TrainingGoing:
            if not ask or input(f"Run {run_id} is still training. Stop it and destroy the run? [y/N] ").strip().lower() not in ("y", "yes"):
                raise
            stop = True
        except OutputsNotDownloaded as e:
            if not ask:
                raise
            got = input(f"Run {run_id}'s outputs were never downloaded. Download them first (d), discard them "
                        f"(type 'discard'), or cancel (Enter)? ").strip().lower()
            if got == "discard":
                discard = True
            elif got in ("d", "download"):
                folder = asyncio.run(life.download(run_id, Path(a.outputs)))
                console.say(f"==> outputs in {folder}")
            else:
                console.say(f"nothing destroyed; `{e.download}` keeps the outputs.")
                return EXIT_OK


def pulumi_env() -> int:
    """`eval "$(trainrig pulumi-env)"`: then `pulumi up -s RUN` in trainrig's folder uses the same
    backend, passphrase and Python as trainrig does."""
    import shlex

    from infra.engine import engine_env
    from infra.project import project_dir
    from runner.workspace import state_dir

    state = state_dir()
    root = project_dir(state)
    for key, value in engine_env(state).items():
        print(f"export {key}={shlex.quote(value)}")
    print(f"cd {shlex.quote(str(root))}")
    return EXIT_OK


def logs_metrics(a: argparse.Namespace, run_id: str, console) -> int:  # type: ignore[no-untyped-def]
    import asyncio

    from runner.events import MetricPoint
    from runner.follow import Offsets
    from runner.lifecycle import Lifecycle
    from runner.metrics import format_point

    def show(event) -> None:  # type: ignore[no-untyped-def]
        if isinstance(event, MetricPoint):
            print(format_point(event), flush=True)
        else:
            console(event)

    life = Lifecycle(on_event=show)
    node = getattr(a, "node", 0)
    if node == "all" or (a.follow and node != 0):
        from runner.errors import BadInput

        raise BadInput(f"--metrics reads one node's points and follows rank 0's: "
                       f"`trainrig logs {run_id} --metrics --node {1 if node == 'all' else node}` reads that node's so far.")
    if a.follow:
        return outcome_exit(asyncio.run(life.follow_run(run_id, Offsets(log=None, metrics=0))), console)
    points = asyncio.run(life.read_metrics(run_id, node))
    for p in points:
        show(p)
    if not points:
        console.say(f"run {run_id} has logged no metrics yet (its script calls trainrig_helpers.log_metrics to log them).")
    return EXIT_OK


def tensorboard(a: argparse.Namespace, run_id: str, console) -> int:  # type: ignore[no-untyped-def]
    import asyncio

    from infra.errors import BadInput
    from runner.lifecycle import Lifecycle

    if not 1 <= a.port <= 65535:
        raise BadInput(f"--port {a.port} is not a port: give one from 1 to 65535 (default 6006).")

    def ready(tunnel) -> None:  # type: ignore[no-untyped-def]
        console.say(f"TensorBoard for run {run_id}: {tunnel.url}  (the machine's port {tunnel.remote_port}, through SSH; "
                    "Ctrl-C stops TensorBoard, not the training)")

    try:
        asyncio.run(Lifecycle(on_event=console).tensorboard(run_id, a.port, ready))
    except KeyboardInterrupt:
        console.say("TensorBoard stopped; the training is untouched.")
    return EXIT_OK


def dataset(a: argparse.Namespace, console) -> int:  # type: ignore[no-untyped-def]
    from runner.datasets import pull_dataset, push_dataset

    if a.dataset_cmd == "push":
        done = push_dataset(a.folder, a.uri, delete=a.delete, on_event=console)
        what = f"{a.folder} -> {a.uri}"
    else:
        done = pull_dataset(a.uri, a.folder, delete=a.delete, on_event=console)
        what = f"{a.uri} -> {a.folder}"
    r = done.result
    console.end_progress()
    if r.files_copied == 0 and r.deleted == 0:
        console.say(f"{what}: unchanged ({r.files_total} files), nothing transferred ({done.seconds:.2f}s)")
    else:
        rate = r.bytes_copied / done.seconds / 1e6 if done.seconds else 0.0
        console.say(f"{what}: {r.files_copied} of {r.files_total} files transferred ({r.bytes_copied / 1e6:.1f} MB, "
                    f"{rate:.1f} MB/s)" + (f", {r.deleted} deleted" if r.deleted else ""))
    return EXIT_OK

