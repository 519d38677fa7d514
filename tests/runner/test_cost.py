"""The cost of a cloud run so far, from its journal: hourly price x time since provisioning began."""

from __future__ import annotations

from pathlib import Path

from infra.cloud import CloudOptions
from infra.engine_outputs import StackOutputs
from infra.spec import build_spec
from runner.cost import cost_so_far, epoch
from runner.journal import RunRecord

DIGITS = str(Path(__file__).resolve().parents[2] / "examples" / "digits")


def _record(**over: object) -> RunRecord:
    spec = build_spec(code=DIGITS, code_name="digits", dataset_name="cost", target="gcp",
                      cloud=CloudOptions(accelerator="T4", project="p", ssh_from="203.0.113.7/32"))
    record = RunRecord(spec=spec, stack=StackOutputs("203.0.113.9", "trainrig", "ssh-ed25519 AAAA", "b", 0.80))
    record.phases = [["provisioning", "2026-11-22T10:00:00.000Z"], ["started", "2026-11-22T10:10:00.000Z"]]
    for k, v in over.items():
        setattr(record, k, v)
    return record


def test_a_running_machine_costs_its_price_times_the_hours_so_far():
    record = _record(state="started")
    assert cost_so_far(record, now=epoch("2026-11-22T11:30:00")) == 0.80 * 1.5


def test_a_destroyed_run_stops_counting_at_its_destruction():
    record = _record(state="destroyed")
    record.phases.append(["destroyed", "2026-11-22T10:45:00.000Z"])
    assert cost_so_far(record, now=epoch("2026-11-23T00:00:00")) == 0.80 * 0.75


def test_a_run_without_a_priced_machine_has_no_cost():
    assert cost_so_far(_record(stack=None)) is None
