"""`trainrig`: the command line. Imports only argparse at start-up so `--help` stays fast; the runner
(asyncssh and friends) is imported by the command that needs it."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_READER_GONE = 141  # as a shell reports a writer ended by a closed pipe (128 + SIGPIPE)


def _stdout_closed() -> bool:
    """Has the reader of our stdout gone away? (A pipe whose reader closed polls as an error.)"""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _fd, ev in poll.poll(0))
    except (OSError, ValueError):
        return True

EPILOG = """examples:
  trainrig run examples/digits --code-name digits --dataset-name sklearn-digits --dataset examples/digits/data
  trainrig run ./yolo --module train --dataset ./beer --dataset-name beer --target ssh --host me@gpu-box
  trainrig logs digits-sklearn-digits -f
exit codes: 0 success, 1 the training failed, 2 bad input (nothing started), 130 interrupted,
  141 the reader of the log went away (`| head`): the training goes on"""


def _spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("code", help="folder with your training code (requirements.txt and install.sh are used when present); "
                   "or the id of a gcp/aws run whose stacks/Pulumi.<run>.yaml describes it")
    p.add_argument("--code-name", help="name of the code (default: the folder's name); lowercase, digits, hyphens")
    p.add_argument("--dataset-name", help="name of the dataset; the run id is <code-name>-<dataset-name>")
    p.add_argument("--dataset", help="dataset: a local folder (uploaded incrementally) or gs://... / s3://... (pulled by the machine)")
    p.add_argument("--output-store", help="gs://BUCKET/PATH or s3://BUCKET/PATH: outputs and logs are synced to PATH/<run id>/ "
                   "(default: a folder on the machine)")
    entry = p.add_mutually_exclusive_group()
    entry.add_argument("--module", help="run `python -m MODULE --dataset_directory D --output_directory O --logs_directory L`")
    entry.add_argument("--command", help="run this command line instead (split like a shell would, not run by one)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment variable for the training (repeatable)")
    p.add_argument("--target", default="local", help="where to train: local (default), ssh, gcp or aws")
    p.add_argument("--host", help="for --target ssh: user@address[:port]")
    p.add_argument("--identity", help="for --target ssh: private key file (default: your SSH agent and default keys)")
    p.add_argument("--known-hosts", help="for --target ssh: known_hosts file with the host's key (default ~/.ssh/known_hosts)")
    p.add_argument("--python", help="for --target ssh: the Python on the machine whose packages the training sees "
                   "(e.g. a conda env's /opt/conda/envs/ml/bin/python; default: python3)")
    p.add_argument("--max-runtime", default="12h", help="stop the training after this long (e.g. 90m, 2h; default 12h)")
    p.add_argument("--sync-interval", default="60s", help="copy outputs and logs to the run's store this often (default 60s)")
    p.add_argument("--install-script", help="bash script in the code folder run before training (default: install.sh if present)")
    c = p.add_argument_group("gcp and aws (see `trainrig accelerators`)")
    c.add_argument("--accelerator", help="NAME or NAME:COUNT, e.g. T4, A10G:4, v5litepod-8")
    c.add_argument("--zone", help="gcp: the zone (default: gcloud's, else the catalog's first); aws: an availability zone")
    c.add_argument("--region", help="aws: the region (default: AWS_REGION / AWS_DEFAULT_REGION / the AWS config)")
    c.add_argument("--project", help="gcp: the project (default: GOOGLE_CLOUD_PROJECT / gcloud's)")
    c.add_argument("--spot", action="store_true", help="a spot (preemptible) machine: cheaper, may be taken back "
                   "(then trainrig resumes the training on a new machine, see --max-restarts)")
    p.add_argument("--max-restarts", type=int, metavar="N", help="bring up a new machine at most N times when the run's "
                   "machine is preempted or vanishes, resuming from the last checkpoint synced to the store "
                   "(default 3 with --spot, else 0; the local target needs --output-store)")
    c.add_argument("--disk-gb", type=int, help="boot disk size in GB (default 200)")
    c.add_argument("--ssh-from", help="CIDR allowed to SSH in (default: this computer's public address /32; "
                   "`anywhere` opens it to the internet)")
    c.add_argument("--image", help="override the image: a GCP image family or an AWS AMI name pattern")
    c.add_argument("--any-zone", action="store_true", help="gcp: when the zone has no capacity, try the catalog's "
                   "other zones for the accelerator (same region first, at most 6)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trainrig", description="Train your own script on a machine with a GPU, or on this computer, and bring the model home.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=False, metavar="COMMAND")  # none: the terminal UI
    ui = sub.add_parser("ui", help="the terminal UI (also `trainrig` alone): every run, one run in depth, every action")
    ui.add_argument("--outputs", default="outputs", help="folder for downloaded runs (default ./outputs)")
    run = sub.add_parser("run", help="the whole lifecycle: up, start, follow, download, down")
    _spec_options(run)
    run.add_argument("--outputs", default="outputs", help="folder for downloaded runs (default ./outputs)")
    up = sub.add_parser("up", help="provision a run's machine")
    _spec_options(up)
    start = sub.add_parser("start", help="upload code and dataset, start the training, follow its log")
    start.add_argument("run")
    start.add_argument("--no-follow", action="store_true", help="return once the training has started")
    logs = sub.add_parser("logs", help="print a run's training log")
    logs.add_argument("run")
    logs.add_argument("-f", "--follow", action="store_true", help="print from the start and follow until the training ends")
    logs.add_argument("--metrics", action="store_true",
                      help="print the training's metric points (trainrig_helpers.log_metrics) instead of its log")
    tb = sub.add_parser("tensorboard", help="TensorBoard on the run's machine, forwarded to localhost through SSH")
    tb.add_argument("run")
    tb.add_argument("--port", type=int, default=6006, help="port on this computer (default 6006, or the next free one)")
    st = sub.add_parser("status", help="a run's state and its machine's status")
    st.add_argument("run")
    st.add_argument("--json", action="store_true")
    ls = sub.add_parser("ls", help="all runs")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--stacks", action="store_true", help="also ask the Pulumi backend for stacks this computer has no "
                    "live run for (made elsewhere, or a lost journal): they may still hold cloud resources")
    stop = sub.add_parser("stop", help="stop the training (outputs are synced); the machine stays (a cloud machine powers off)")
    stop.add_argument("run")
    dl = sub.add_parser("download", help="download outputs and logs into <outputs>/<UTC>_<code>_<dataset>/ "
                        "(one cut off is resumed in its folder)")
    dl.add_argument("run")
    dl.add_argument("--outputs", default="outputs")
    ds = sub.add_parser("dataset", help="upload or download a dataset folder to or from a bucket (gs://, s3://)")
    ds_sub = ds.add_subparsers(dest="dataset_cmd", required=True, metavar="ACTION")
    ds_push = ds_sub.add_parser("push", help="upload a local folder to a bucket location, only what changed")
    ds_push.add_argument("folder")
    ds_push.add_argument("uri", help="gs://bucket/path or s3://bucket/path (or another folder)")
    ds_pull = ds_sub.add_parser("pull", help="download a bucket location into a local folder, only what changed")
    ds_pull.add_argument("uri")
    ds_pull.add_argument("folder")
    for p_ in (ds_push, ds_pull):
        p_.add_argument("--delete", action="store_true", help="also delete what the source no longer has")
    down = sub.add_parser("down", help="destroy everything the run created")
    down.add_argument("run")
    down.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    down.add_argument("--discard-outputs", action="store_true", help="destroy the run even if its outputs were never downloaded")
    down.add_argument("--stop", action="store_true", help="stop a training that still runs first (otherwise down refuses)")
    down.add_argument("--outputs", default="outputs", help="where a download chosen at the prompt goes (default ./outputs)")
    acc = sub.add_parser("accelerators", help="the accelerator catalog: machines, memory, prices, places")
    acc.add_argument("--cloud", choices=("gcp", "aws"), help="only this cloud's")
    sub.add_parser("pulumi-env", help="print the exports that make plain `pulumi` see trainrig's stacks (eval it)")
    from tui.doctor_cli import add_parser as add_doctor
    from tui.ssh_cli import add_parser as add_ssh

    add_doctor(sub)
    add_ssh(sub)
    return p


_FROM_STACK_CONFLICTS = ("code_name", "dataset_name", "dataset", "output_store", "module", "command", "env", "host",
                         "identity", "known_hosts", "python", "install_script",
                         "accelerator", "zone", "region", "project", "spot", "disk_gb", "ssh_from", "image", "any_zone")


def _given_spec_options(a: argparse.Namespace) -> list[str]:
    """The spec options the user passed (a known run refuses them: its stack config or record is the spec)."""
    given = [f"--{k.replace('_', '-')}" for k in _FROM_STACK_CONFLICTS if getattr(a, k, None) not in (None, False, [])]
    given += [f"--{k.replace('_', '-')}" for k, default in (("max_runtime", "12h"), ("sync_interval", "60s"), ("target", "local"))
              if getattr(a, k) != default]
    return given


def _spec(a: argparse.Namespace):  # type: ignore[no-untyped-def]
    from infra.cloud import CloudOptions
    from infra.durations import parse_duration
    from infra.spec import build_spec

    from runner.journal import Journal
    from runner.known_spec import known_run_spec

    known = known_run_spec(a.code, _given_spec_options(a), Journal())
    if known is not None:
        return known

    return build_spec(
        code=a.code, code_name=a.code_name, dataset_name=a.dataset_name, dataset=a.dataset, module=a.module,
        command=a.command, env=a.env, target=a.target, max_runtime_s=parse_duration(a.max_runtime, "--max-runtime"),
        sync_interval_s=parse_duration(a.sync_interval, "--sync-interval"), install_script=a.install_script,
        host=a.host, identity_file=a.identity, known_hosts=a.known_hosts, python=a.python, output_store=a.output_store,
        cloud=CloudOptions(accelerator=a.accelerator, zone=a.zone, region=a.region, project=a.project, spot=a.spot,
                           disk_gb=a.disk_gb, ssh_from=a.ssh_from, image=a.image, any_zone=a.any_zone),
    )


def _outcome_exit(status, console, again: str = "") -> int:  # type: ignore[no-untyped-def]
    from runner.outcomes import report

    done = report(status, again or f"trainrig start {console.run_id}")
    for line in done.lines:
        console.say(line)
    return done.exit_code


def _dispatch(a: argparse.Namespace, console) -> int:  # type: ignore[no-untyped-def]
    import asyncio

    if a.cmd in (None, "ui"):
        if not (sys.stdin.isatty() and sys.stdout.isatty()):  # a script or a pipe: never a screen that waits
            from infra.errors import BadInput

            raise BadInput("`trainrig` alone opens the terminal UI, which needs a terminal: give a command "
                           "(`trainrig --help` lists them).")
        from tui.app import run_app  # Textual is imported here only: `--help` stays fast

        run_app(Path(getattr(a, "outputs", "outputs")))
        return EXIT_OK
    if a.cmd == "dataset":
        return _dataset(a, console)
    if a.cmd == "accelerators":
        from infra.catalog import format_table

        print(format_table(a.cloud))
        return EXIT_OK
    if a.cmd == "pulumi-env":
        return _pulumi_env()
    if a.cmd == "doctor":
        from tui.doctor_cli import doctor

        return doctor(a, console)
    if a.cmd == "ssh":
        from tui.ssh_cli import ssh

        return ssh(a, console)

    from infra.names import check_run_id
    from runner.lifecycle import Lifecycle

    life = Lifecycle(on_event=console)
    if a.cmd in ("run", "up"):
        spec = _spec(a)
        console.run_id = spec.run_id
        for note in spec.notes:
            console.say(f"    {note}")
        if a.cmd == "up":
            rec = asyncio.run(life.up(spec, a.max_restarts))
            console.say(f"run {rec.run_id} is up: `trainrig start {rec.run_id}` trains on it.")
            return EXIT_OK
        result = asyncio.run(life.run(spec, Path(a.outputs), a.max_restarts))
        code = _outcome_exit(result.status, console, again=f"trainrig run {spec.run_id}")
        if result.folder:
            console.say(f"==> outputs in {result.folder}")
        return code
    run_id = check_run_id(a.run) if hasattr(a, "run") else None
    console.run_id = run_id or ""
    if a.cmd == "start":
        status = asyncio.run(life.start(run_id, follow_log=not a.no_follow))
        if a.no_follow:
            console.say(f"the training runs: `trainrig logs {run_id} -f` follows it, `trainrig status {run_id}` tells where it is.")
        return _outcome_exit(status, console)
    if a.cmd == "logs" and a.metrics:
        return _logs_metrics(a, run_id, console)
    if a.cmd == "tensorboard":
        return _tensorboard(a, run_id, console)
    if a.cmd == "logs":
        if a.follow:
            return _outcome_exit(asyncio.run(life.follow_logs(run_id, 0)), console)
        asyncio.run(life.stream_log(run_id, sys.stdout.buffer.write))  # in pieces: a 1 GB log costs no 1 GB here
        sys.stdout.buffer.flush()
        return EXIT_OK
    if a.cmd == "status":
        from runner.outcomes import ls_row
        from tui.cli_print import print_status

        rep = asyncio.run(life.status(run_id))
        if a.json:
            print(json.dumps({"run": rep.record.to_dict(), "status": rep.status.to_dict() if rep.status else None,
                              "error": rep.error, "telemetry": rep.telemetry.to_dict() if rep.telemetry else None,
                              "cost": {k: v for k, v in ls_row(rep.record).items() if k in ("hourly_usd", "cost_usd_at_most")}},
                             indent=1))
        else:
            print_status(rep)
        return EXIT_OK
    if a.cmd == "ls":
        from runner.outcomes import ls_row
        from tui.cli_print import print_table

        records = life.ls()
        if not a.json:
            print_table(records)  # before the backend is asked: its failure must not hide the runs
        unknown = life.unknown_stacks() if a.stacks else []
        if a.json:
            print(json.dumps([ls_row(r) for r in records] + [{"run_id": n, "state": "stack only"} for n in unknown], indent=1))
        else:
            for name in unknown:
                print(f"stack {name} is in the Pulumi backend but not a live run here: `pulumi destroy -s {name}` "
                      "(after `eval \"$(trainrig pulumi-env)\"`) removes what it holds")
        return EXIT_OK
    if a.cmd == "stop":
        status = asyncio.run(life.stop(run_id))
        record = life.journal.load(run_id)
        after = ("the machine powers itself off after its final sync: `trainrig download` reads the bucket, "
                 "and a new training needs `trainrig down` then `run`" if record.stack else "the machine stays up")
        console.say(f"run {run_id}: {status.outcome if status and status.done else 'not training'}; {after}.")
        return EXIT_OK
    if a.cmd == "download":
        folder = asyncio.run(life.download(run_id, Path(a.outputs)))
        console.say(f"==> outputs in {folder}")
        return EXIT_OK
    if a.cmd == "down":
        return _down(a, run_id, life, console)
    raise AssertionError(a.cmd)


def _down(a: argparse.Namespace, run_id: str, life, console) -> int:  # type: ignore[no-untyped-def]
    """Without a terminal a refusal is final (exit 2, both ways out printed); on one, each refusal
    is asked about and its way out taken when the person says so."""
    import asyncio

    from runner.down_checks import OutputsNotDownloaded, TrainingGoing

    ask = sys.stdin.isatty()
    if ask and not a.yes and life.journal.load(run_id).state != "destroyed":
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


def _pulumi_env() -> int:
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


def _logs_metrics(a: argparse.Namespace, run_id: str, console) -> int:  # type: ignore[no-untyped-def]
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
    if a.follow:
        return _outcome_exit(asyncio.run(life.follow_run(run_id, Offsets(log=None, metrics=0))), console)
    points = asyncio.run(life.read_metrics(run_id))
    for p in points:
        show(p)
    if not points:
        console.say(f"run {run_id} has logged no metrics yet (its script calls trainrig_helpers.log_metrics to log them).")
    return EXIT_OK


def _tensorboard(a: argparse.Namespace, run_id: str, console) -> int:  # type: ignore[no-untyped-def]
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


def _dataset(a: argparse.Namespace, console) -> int:  # type: ignore[no-untyped-def]
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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from infra.errors import TrainrigError
    from tui.console import Console, ReaderGone

    console = Console()
    try:
        code = _dispatch(args, console)
    except TrainrigError as e:
        console.say(f"error: {e}")
        code = e.exit_code
    except ReaderGone:  # `trainrig run ... | head`: the training started and goes on
        run = console.run_id
        console.say(f"stopped following: the reader of the log went away; the training goes on. "
                    f"`trainrig logs {run} -f` follows it, `trainrig stop {run}` stops it.")
        code = EXIT_READER_GONE
    except BrokenPipeError as e:
        if not _stdout_closed():  # a pipe to the machine, not the user's reader: a failure, never quiet
            where = f"trainrig status {console.run_id}" if console.run_id else "trainrig ls"
            console.say(f"error: the connection to the machine was lost ({e.strerror or e}); `{where}` tells where the run stands.")
            code = EXIT_FAILED
        else:  # `trainrig accelerators | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = EXIT_OK
    except Exception as e:  # a failure trainrig did not foresee: one line, the traceback on demand
        if os.environ.get("TRAINRIG_DEBUG"):
            raise
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:  # this computer's, e.g. the state folder's
            where = f" ({e.filename})" if e.filename else ""
            console.say(f"error: this computer's disk is full{where}: free some space, then run the same command again.")
        else:
            console.say(f"error: unexpected {type(e).__name__}: {e} (TRAINRIG_DEBUG=1 shows where)")
        code = EXIT_FAILED
    except KeyboardInterrupt:
        run = console.run_id
        if console.following:
            console.say(f"\nstopped following; the training goes on. `trainrig logs {run} -f` follows it again, "
                         f"`trainrig stop {run}` stops it.".replace("  ", " "))
        else:
            console.say("\ninterrupted: what was done so far stays; `trainrig ls` shows the runs.")
        code = EXIT_INTERRUPTED
    if args.cmd in ("up", "run", "start", "down"):  # a run got or lost its machine: `ssh trainrig-RUN` follows
        _sync_ssh_config(console)
    sys.exit(code)


def _sync_ssh_config(console) -> None:  # type: ignore[no-untyped-def]
    """Never changes the command's outcome: a config that cannot be written is a note."""
    from runner.ssh_config import sync_quietly

    problem = sync_quietly()
    if problem:
        console.say(f"note: {problem}")


if __name__ == "__main__":
    main()
