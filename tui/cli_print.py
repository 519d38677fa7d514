"""What `trainrig ls` and `trainrig status` print for a person (their --json comes from runner/outcomes.py)."""

from __future__ import annotations

from runner.states import RESTARTABLE, RunState


def print_table(records) -> None:  # type: ignore[no-untyped-def]
    rows = [("RUN", "TARGET", "STATE", "OUTCOME", "RESTARTS", "CREATED", "MACHINE", "SWEEP")]
    for r in records:
        rows.append((r.run_id, r.spec.target, r.state, r.outcome or "-", f"{len(r.restarts)}/{r.max_restarts}",
                     r.created_at[:19], r.machine.address if r.machine and r.state != RunState.DESTROYED else "-",
                     (r.sweep + (f" (on {r.borrowed_from})" if r.borrowed_from else "")) if r.sweep else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def print_status(rep) -> None:  # type: ignore[no-untyped-def]
    r, s = rep.record, rep.status
    print(f"run       {r.run_id}  ({r.spec.target}, {r.state})")
    if r.machine and r.state != RunState.DESTROYED:
        print(f"machine   {r.machine.address}")
    if r.stack:
        from runner.cost import cost_so_far

        cost = cost_so_far(r)
        print(f"cost      ${r.stack.hourly_price:.2f}/hour" + (
            f"; at most ${cost:.2f} so far (the machine stops itself after the training; stopped, it bills "
            "its disk only)" if cost is not None else ""))
    if r.max_restarts or r.restarts:
        print(f"restarts  {len(r.restarts)} of at most {r.max_restarts}")
        for x in r.restarts:
            cost = f", ${x.cost_usd:.2f}" if x.cost_usd is not None else ""
            print(f"  #{x.number}      {x.outcome} at {x.ended_at[:19]} on {x.machine or '-'}{f' ({x.zone})' if x.zone else ''}"
                  f"{cost}: {x.reason}")
    if s:
        print(f"phase     {s.phase}" + (f"  outcome {s.outcome}" if s.outcome else ""))
        if s.reason:
            print(f"reason    {s.reason}")
        if s.exit_code is not None:
            print(f"exit code {s.exit_code}")
        print(f"started   {s.started_at}" + (f"  ended {s.ended_at}" if s.ended_at else ""))
        if s.last_sync_at:
            print(f"synced    {s.last_sync_at}")
        if s.final_sync_ok is False:
            print(f"final sync NOT finished ({s.sync_error}): free space on the machine (or fix its bucket), then "
                  f"`trainrig download {r.run_id}` finishes it")
        if s.warning:
            print(f"warning   {s.warning}")
        if s.done and s.outcome in RESTARTABLE and len(r.restarts) < r.max_restarts and r.state == RunState.STARTED:
            print(f"restart   `trainrig logs {r.run_id} -f` brings up a new machine and resumes the training "
                  f"(restart {len(r.restarts) + 1} of {r.max_restarts})")
    for n in rep.node_rows():  # a multi-node run: every node, rank order
        print(f"node {n.rank:<4} {n.address}  " + (
            (n.phase or "-") + (f"  outcome {n.outcome}" if n.outcome else "") + (f": {n.reason}" if n.reason else "")
            if n.readable else "its status cannot be read now"))
    if rep.telemetry:
        from tui.telemetry_text import telemetry_lines

        for i, line in enumerate(telemetry_lines(rep.telemetry)):
            print(f"{'telemetry' if i == 0 else '':9} {line}")
    if rep.error:
        print(f"machine unreachable: {rep.error}")
    for d in r.downloads:
        print(f"download  {d}")
