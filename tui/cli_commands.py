"""The command handlers: each verb's work, once the arguments are parsed (tui/cli_args.py). The
runner (asyncssh and friends) is imported by the verb that needs it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tui.cli_tools import dataset, down, logs_metrics, outcome_exit, pulumi_env, tensorboard
from tui.exit_codes import EXIT_OK

_FROM_STACK_CONFLICTS = ("code_name", "dataset_name", "dataset", "output_store", "module", "command", "env", "host",
                         "identity", "known_hosts", "python", "install_script",
                         "accelerator", "zone", "region", "project", "spot", "disk_gb", "ssh_from", "image", "any_zone")

_DEFAULTED = (("max_runtime", "12h"), ("sync_interval", "60s"), ("target", "local"), ("nodes", 1), ("launcher", "none"),
              ("outputs_from", "rank0"))


def _given_spec_options(a: argparse.Namespace) -> list[str]:
    """The spec options the user passed (a known run refuses them: its stack config or record is the spec)."""
    given = [f"--{k.replace('_', '-')}" for k in _FROM_STACK_CONFLICTS if getattr(a, k, None) not in (None, False, [])]
    given += [f"--{k.replace('_', '-')}" for k, default in _DEFAULTED if getattr(a, k) != default]
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
        nodes=a.nodes, launcher=a.launcher, outputs_from=a.outputs_from,
    )



def dispatch(a: argparse.Namespace, console) -> int:  # type: ignore[no-untyped-def]
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
        return dataset(a, console)
    if a.cmd == "accelerators":
        from infra.catalog import format_table

        print(format_table(a.cloud))
        return EXIT_OK
    if a.cmd == "pulumi-env":
        return pulumi_env()
    if a.cmd == "doctor":
        from tui.doctor_cli import doctor

        return doctor(a, console)
    if a.cmd == "ssh":
        from tui.ssh_cli import ssh

        return ssh(a, console)
    if a.cmd == "sweep":
        from tui.sweep_cli import sweep

        return sweep(a, console)

    from infra.names import check_run_id
    from runner.lifecycle import Lifecycle

    life = Lifecycle(on_event=console)
    if a.cmd in ("run", "up"):
        spec = _spec(a)
        console.run_id = spec.run_id
        if a.cmd == "up":
            rec = asyncio.run(life.up(spec, a.max_restarts))
            console.say(f"run {rec.run_id} is up: `trainrig start {rec.run_id}` trains on it.")
            return EXIT_OK
        result = asyncio.run(life.run(spec, Path(a.outputs), a.max_restarts))
        code = outcome_exit(result.status, console, again=f"trainrig run {spec.run_id}")
        if result.folder:
            console.say(f"==> outputs in {result.folder}")
        return code
    run_id = check_run_id(a.run) if hasattr(a, "run") else None
    console.run_id = run_id or ""
    if a.cmd == "start":
        status = asyncio.run(life.start(run_id, follow_log=not a.no_follow))
        if a.no_follow:
            console.say(f"the training runs: `trainrig logs {run_id} -f` follows it, `trainrig status {run_id}` tells where it is.")
        return outcome_exit(status, console)
    if a.cmd == "logs" and a.metrics:
        return logs_metrics(a, run_id, console)
    if a.cmd == "tensorboard":
        return tensorboard(a, run_id, console)
    if a.cmd == "logs":
        if a.follow:
            return outcome_exit(asyncio.run(life.follow_logs(run_id, 0, node=a.node)), console)
        asyncio.run(life.stream_log(run_id, sys.stdout.buffer.write, node=a.node))  # in pieces: a 1 GB log costs no 1 GB here
        sys.stdout.buffer.flush()
        return EXIT_OK
    if a.cmd == "status":
        from runner.outcomes import ls_row
        from tui.cli_print import print_status

        rep = asyncio.run(life.status(run_id))
        if a.json:
            print(json.dumps({"run": rep.record.to_dict(), "status": rep.status.to_dict() if rep.status else None,
                              "error": rep.error, "telemetry": rep.telemetry.to_dict() if rep.telemetry else None,
                              "nodes": rep.nodes_json(),
                              "cost": {k: v for k, v in ls_row(rep.record).items() if k in ("hourly_usd", "cost_usd_at_most")}},
                             indent=1))
        else:
            print_status(rep)
        return EXIT_OK
    if a.cmd == "ls":
        from runner.outcomes import grouped_by_sweep, ls_row
        from tui.cli_print import print_table

        records = grouped_by_sweep(life.ls())
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
        return down(a, run_id, life, console)
    raise AssertionError(a.cmd)

