"""One sink can follow several runs: every event the lifecycle emits carries its run's id, from any
depth (transfers, the follower, the machine's phases), also with two runs going at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from infra.spec import build_spec
from runner.events import Event, LogChunk, Progress, StatusChanged, TelemetrySample
from runner.journal import Journal
from runner.lifecycle import Lifecycle
from tests.conftest import make_code


def test_two_runs_at_once_through_one_sink_keep_their_events_apart(state_home: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    life = Lifecycle(Journal(state_home), on_event=events.append)
    specs = []
    for name in ("left", "right"):
        code = make_code(tmp_path / name, f"""
            import time
            for i in range(5):
                print("{name}", i, flush=True)
                time.sleep(0.05)
        """)
        specs.append(build_spec(code=str(code), code_name=name, dataset_name="ids"))

    async def both() -> None:
        await asyncio.gather(*(life.run(spec, tmp_path / "out") for spec in specs))

    asyncio.run(both())
    assert events and all(e.run_id in ("left-ids", "right-ids") for e in events)
    for rid, name in (("left-ids", b"left"), ("right-ids", b"right")):
        log = b"".join(e.data for e in events if isinstance(e, LogChunk) and e.run_id == rid)
        assert log == b"".join(b"%s %d\n" % (name, i) for i in range(5))
    assert StatusChanged.replaceable and Progress.replaceable and TelemetrySample.replaceable
    assert not getattr(LogChunk, "replaceable", False)
