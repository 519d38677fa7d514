"""`trainrig doctor [--clean]`: the front end of runner/doctor.py and runner/leftovers.py.

Exit codes: 0 all well (no check failed, every place could be listed, nothing left over, or all of
it deleted by --clean); 1 leftovers remain, a place could not be listed, or a check failed;
2 bad input (a malformed --region/--project, --clean without a terminal and without --yes)."""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    d = sub.add_parser("doctor", help="check this computer for cloud runs, and list (or --clean) cloud resources "
                       "labelled by trainrig that no live run knows")
    d.add_argument("--cloud", choices=("gcp", "aws"), help="only this cloud (default: each one whose credentials are here)")
    d.add_argument("--region", action="append", default=[], help="aws: look in this region only (repeatable; default: "
                   "the catalog's regions, your configured one and those of the runs here)")
    d.add_argument("--project", action="append", default=[], help="gcp: look in this project (repeatable; default: "
                   "GOOGLE_CLOUD_PROJECT / gcloud's, and those of the runs here)")
    d.add_argument("--clean", action="store_true", help="delete the leftovers found (asks first on a terminal)")
    d.add_argument("-y", "--yes", action="store_true", help="with --clean: do not ask")
    d.add_argument("--json", action="store_true", help="print the checks and leftovers as JSON")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m = int(seconds // 60)
    return f"{m // 1440}d{m % 1440 // 60}h" if m >= 1440 else f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m"


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _print_checks(report) -> None:  # type: ignore[no-untyped-def]
    _table([("CHECK", "STATUS", "DETAIL")] + [(c.name, c.status, c.detail) for c in report.checks])
    for c in report.checks:
        if c.status in ("missing", "failed") and c.fix:
            print(f"  {c.name}: {c.fix}")


def _print_leftovers(listing) -> None:  # type: ignore[no-untyped-def]
    p = listing.places
    where = "; ".join(x for x in (f"aws {', '.join(p.aws_regions)}" if p.aws_regions else "",
                                  f"gcp {', '.join(p.gcp_projects)}" if p.gcp_projects else "") if x)
    print(f"\nleftovers (searched: {where or 'no cloud: no credentials found'}): {len(listing.leftovers)}")
    for s in listing.skipped:
        print(f"  not searched: {s}")
    for e in listing.errors:
        print(f"  could not be searched: {e}")
    if not listing.leftovers:
        return
    rows = [("CLOUD", "KIND", "ID", "WHERE", "RUN", "AGE", "$/HOUR")]
    for f in listing.leftovers:
        rows.append((f.cloud, f.kind, f.id, f.where, f.run_id, _age(f.age_s()),
                     f"{f.hourly_usd:.2f}" if f.hourly_usd is not None else "-"))
    _table(rows)
    hourly = sum(f.hourly_usd or 0.0 for f in listing.leftovers)
    if hourly:
        print(f"at least ${hourly:.2f}/hour in machines (catalog prices; disks and buckets bill apart)")
    print("delete them by hand:")
    for f in listing.leftovers:
        print(f"  {f.delete_command}")
    print("or all at once: trainrig doctor --clean")


def _ask(prompt: str) -> str:
    """The question on stderr, so that stdout stays the report (`--json` on a terminal too)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower()


def doctor(a: argparse.Namespace, console) -> int:  # type: ignore[no-untyped-def]
    from infra.errors import BadInput
    from runner.doctor import diagnose
    from runner.journal import Journal
    from runner.leftovers import delete

    ask = sys.stdin.isatty() and not a.yes
    if a.clean and not a.yes and not sys.stdin.isatty():
        raise BadInput("`trainrig doctor --clean` deletes cloud resources and there is no terminal to ask on: "
                       "`trainrig doctor --clean --yes` deletes without asking.")
    found = diagnose(a.cloud, tuple(a.region), tuple(a.project), Journal())
    report, listing = found.report, found.listing
    if not a.json:
        _print_checks(report)
        _print_leftovers(listing)
    deleted = []
    if a.clean and listing.leftovers:
        if ask and _ask(f"Delete these {len(listing.leftovers)} cloud resources? [y/N] ") not in ("y", "yes"):
            console.say("nothing deleted.")
        else:
            def told(d) -> None:  # type: ignore[no-untyped-def]
                if not a.json:
                    console.say(f"{'deleted' if not d.error else 'NOT deleted'}: {d.leftover.cloud} {d.leftover.kind} "
                                f"{d.leftover.id}" + (f" ({d.error})" if d.error else ""))

            deleted = delete(listing.leftovers, told)
    left = [f for f in listing.leftovers if not any(d.leftover == f and not d.error for d in deleted)]
    if a.json:
        print(json.dumps({"checks": [c.to_dict() for c in report.checks],
                          "leftovers": [f.to_dict() for f in listing.leftovers],
                          "deleted": [d.leftover.to_dict() | {"error": d.error} for d in deleted],
                          "errors": list(listing.errors), "skipped": list(listing.skipped),
                          "places": {"aws_regions": list(listing.places.aws_regions),
                                     "gcp_projects": list(listing.places.gcp_projects)}}, indent=1))
    return EXIT_FAILED if report.failed or listing.errors or left else EXIT_OK
