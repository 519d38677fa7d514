"""`trainrig logs RUN --metrics --node K`: a real 2-node run on the `local` target, each node logging
its own rank as its metric; the runner reads node K's points, and a follow of another node than
rank 0 (or of all) is bad input, exit 2."""

from __future__ import annotations

import asyncio

from runner.journal import Journal
from runner.lifecycle import Lifecycle
from tests.conftest import make_code

TRAIN = """
import os
import trainrig_helpers as th
rank = int(os.environ["TRAINRIG_NODE_RANK"])
for step in range(3):
    th.log_metrics(step, rank=rank)
"""


def test_each_nodes_metrics_are_read_from_that_node(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "nodemetrics", TRAIN)
    rid = "nodemetrics-none"
    assert trainrig("up", str(code), "--dataset-name", "none", "--nodes", "2", "--command", "python train.py").code == 0
    try:
        assert trainrig("start", rid).code == 0
        life = Lifecycle(Journal(state_home))
        for k in (0, 1):
            points = asyncio.run(life.read_metrics(rid, k))
            assert [(p.step, p.values["rank"]) for p in points] == [(s, float(k)) for s in range(3)]
        assert trainrig("logs", rid, "--metrics", "--node", "1", "-f").code == 2
        assert trainrig("logs", rid, "--metrics", "--node", "all").code == 2
        assert trainrig("logs", rid, "--metrics", "--node", "2").code == 2  # no such node
    finally:
        assert trainrig("down", rid, "--discard-outputs").code == 0
