"""`trainrig sweep CODE --param ... --objective METRIC:min|max`: the front end of runner/sweep/.
Optuna (and the runner) are imported by the command only, never by `trainrig --help`.

Exit codes: 0 the sweep ended with a best trial; 1 no trial completed (every one failed or was
pruned); 2 bad input (nothing started); 130 interrupted (its machines destroyed, its finished
trials kept: `trainrig sweep --resume NAME` continues it)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    from tui.cli_args import spec_options

    sw = sub.add_parser("sweep", help="tune hyperparameters with Optuna: each trial a run of its own, on "
                        "--parallel machines reused from trial to trial")
    spec_options(sw)
    for action in sw._actions:  # CODE is not needed with --resume (the sweep's file has it)
        if action.dest == "code":
            action.nargs, action.default = "?", None
    sw.add_argument("--param", action="append", default=[], metavar="NAME=VALUES",
                    help="a parameter to vary (repeatable): NAME=log:1e-4..1e-1 (log scale), NAME=0.1..0.5 (floats), "
                    "NAME=2..8 (integers), NAME=32,64 (a choice); each trial gets --NAME VALUE and TRAINRIG_PARAM_NAME")
    sw.add_argument("--objective", metavar="METRIC:min|max", help="the metric to optimize, as the training logs it "
                    "with trainrig_helpers.log_metrics (its last point is the trial's value), e.g. val_loss:min")
    sw.add_argument("--trials", type=int, help="how many trials in all (default 12)")
    sw.add_argument("--parallel", type=int, help="machines for the whole sweep, each training one trial after "
                    "another (default 1)")
    sw.add_argument("--name", help="the sweep's name (default: the run id <code-name>-<dataset-name>)")
    sw.add_argument("--resume", metavar="NAME", help="continue sweep NAME where it stopped (finished trials are kept)")
    sw.add_argument("--seed", type=int, help="seed Optuna's sampler (the same trials' parameters again)")
    sw.add_argument("--no-prune", action="store_true", help="never stop a trial early (default: Optuna's median pruner)")
    sw.add_argument("--outputs", default="outputs", help="folder for each trial's downloaded outputs (default ./outputs)")
    sw.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    sw.add_argument("-v", "--verbose", action="store_true", help="print every trial's phases too")


def _config(a: argparse.Namespace):  # type: ignore[no-untyped-def]
    from infra.errors import BadInput
    from runner.sweep import study
    from runner.sweep.params import parse_objective, parse_params

    if a.resume:
        from tui.cli_commands import _given_spec_options

        given = [o for o, v in (("CODE", a.code), ("--param", a.param), ("--objective", a.objective), ("--name", a.name),
                                ("--seed", a.seed)) if v not in (None, [])] + _given_spec_options(a)
        if given:
            raise BadInput(f"--resume takes the sweep's settings from its file: drop {', '.join(given)} "
                           f"(only --trials and --parallel may change).")
        old = study.load_config(a.resume)
        from runner.launching import check_sources

        check_sources(old.spec)  # before any machine: a folder moved away would fail every trial
        from dataclasses import replace

        return _checked(replace(old, trials=_given(a.trials, old.trials), parallel=_given(a.parallel, old.parallel)))
    if not a.code:
        raise BadInput("give the code folder to sweep over (`trainrig sweep CODE --param ... --objective M:min`), "
                       "or --resume NAME.")
    if not a.objective:
        raise BadInput("--objective is missing: name the metric to optimize as the training logs it, e.g. "
                       "--objective val_loss:min.")
    objective, params = parse_objective(a.objective), parse_params(a.param)
    if a.max_restarts:
        raise BadInput("--max-restarts does not apply to a sweep (a trial whose machine is lost is told to Optuna as "
                       "failed): drop it.")
    if a.nodes != 1:
        raise BadInput(f"--nodes {a.nodes}: a sweep trains each trial on one machine; drop --nodes.")
    from tui.cli_commands import _spec

    spec = _spec(a)
    clash = sorted({k for k, _ in spec.env} & {p.env_name for p in params})
    if clash:
        raise BadInput(f"--env {clash[0]} is set by the sweep itself from --param: drop it.")
    name = a.name or spec.run_id
    from infra.names import MAX_RUN_ID, check_run_id

    try:
        check_run_id(name)
    except BadInput:
        raise BadInput(f"--name {name!r} is not a sweep name: use lowercase letters, digits and single hyphens, at most "
                       f"{MAX_RUN_ID} characters (e.g. --name lr-search).") from None
    if (study.sweep_dir(name) / "sweep.json").is_file():
        raise BadInput(f"sweep {name} exists already: `trainrig sweep --resume {name}` continues it, "
                       f"or give another --name.")
    from runner.journal import Journal

    # Trial and slot ids come from the run id, not the name: another sweep's records would be overwritten.
    other = next((r.sweep for r in Journal().all() if r.sweep and r.sweep != name
                  and re.fullmatch(re.escape(spec.run_id) + r"-[st]\d+", r.run_id)), None)
    if other:
        raise BadInput(f"sweep {other} has trials named {spec.run_id}-t<N> already: `trainrig sweep --resume {other}` "
                       f"continues it (a larger --trials adds trials), or give another --dataset-name.")
    return _checked(study.SweepConfig(name=name, spec=spec, params=params, objective=objective, trials=_given(a.trials, 12),
                                      parallel=_given(a.parallel, 1), outputs=os.path.abspath(a.outputs), seed=a.seed, prune=not a.no_prune))


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def _checked(config):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from infra.errors import BadInput
    from runner.downloading import check_outputs_root

    check_outputs_root(Path(config.outputs))  # every trial downloads there: a bad one would fail them all
    from runner.sweep.slots import slot_id
    from runner.sweep.trials import trial_id

    if config.trials < 1 or config.parallel < 1:
        raise BadInput("--trials and --parallel must be 1 or more (e.g. --trials 12 --parallel 3).")
    trial_id(config, config.trials + config.parallel)  # the longest ids: within the run id limit, or one sentence
    slot_id(config.spec, config.parallel)
    return config


def _sink(console, verbose: bool):  # type: ignore[no-untyped-def]
    from runner.events import Notice, PhaseChanged

    t0 = time.monotonic()

    def show(event) -> None:  # type: ignore[no-untyped-def]
        if isinstance(event, Notice):
            console.say(f"    {event.run_id + ': ' if event.run_id else ''}{event.text}")
        elif isinstance(event, PhaseChanged) and (verbose or not re.search(r"-t\d+$", event.run_id)):  # slots' phases only
            console.say(f"==> [{time.monotonic() - t0:6.1f}s] {event.run_id}: {event.phase}"
                        + (f"  {event.detail}" if event.detail else ""))

    return show


def sweep(a: argparse.Namespace, console) -> int:  # type: ignore[no-untyped-def]
    import asyncio
    import signal

    from runner.sweep import study
    from runner.sweep.driver import run_sweep

    config = _config(a)

    def started() -> None:  # once the sweep is ours: a refusal (another process runs it) stays one sentence
        console.say(f"sweep {config.name}: {config.trials} trials, {config.parallel} at a time, {config.objective} "
                    f"({study.journal_path(config.name)})")

    def on_trial(r) -> None:  # type: ignore[no-untyped-def]
        value = f"{config.objective.metric}={r.value:.6g}" if r.value is not None else "no value"
        params = " ".join(f"{k}={v}" for k, v in r.params.items())
        console.say(f"trial {r.number} ({r.run_id}): {r.end.value}  {value}  {params}  [{r.seconds:.1f}s]"
                    + (f"  ({r.reason})" if r.reason else ""))

    async def main():  # type: ignore[no-untyped-def]
        loop, task, asked = asyncio.get_running_loop(), asyncio.current_task(), []

        def interrupt() -> None:
            # Once only: a second Ctrl-C must not cut the clean-up short (machines left billing,
            # trainings left running); the sweep is cancelled and cleans up, whatever comes after.
            if asked:
                console.say("still stopping the trials and destroying the sweep's machines: a moment")
                return
            asked.append(True)
            console.say("\ninterrupted: stopping the trials and destroying the sweep's machines (Ctrl-C again does "
                        "not stop that)")
            task.cancel()  # type: ignore[union-attr]

        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:  # started with SIGINT ignored (`nohup`, `&`): kept so
                loop.add_signal_handler(sig, interrupt)
        return await run_sweep(config, _sink(console, a.verbose), on_trial, new=not a.resume, on_start=started)

    try:
        result = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.say(f"\nsweep {config.name} interrupted: its machines are destroyed, its finished trials kept; "
                    f"`trainrig sweep --resume {config.name}` continues it.")
        return EXIT_INTERRUPTED
    return _report(result, config, console, a.json)


def _report(result, config, console, as_json: bool) -> int:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    b = result.best
    console.say(f"sweep {result.name}: {result.complete} complete, {result.pruned} pruned, {result.failed} failed")
    if b is not None:
        params = ", ".join(f"{k}={v}" for k, v in b.params.items())
        console.say(f"best: trial {b.number} ({b.run_id}) {config.objective.metric}={b.value:.6g} with {params}; "
                    f"outputs in {b.outputs or '(not downloaded)'}")
    elif result.gave_up:
        console.say(f"the first {len(result.ran)} trials all failed, so no more were started: see their reasons above, fix "
                    f"the training (then `trainrig sweep --resume {result.name}`) or start a sweep of another --name.")
    else:
        console.say(f"no trial completed: see each trial's reason above; its logs are in {config.outputs}/.")
    if as_json:
        out = asdict(result)
        for r in out["ran"]:
            r["end"], r["outputs"] = str(r["end"].value), str(r["outputs"]) if r["outputs"] else None
        json.dump(out, sys.stdout, indent=1, default=str)
        print()
    return EXIT_OK if b is not None else EXIT_FAILED
