"""A sweep's slot machines across a sweep process killed hard (kill -9) while it made them: the
slot's record names its sweep from the start, so `--resume` finds it, destroys a half-made one and
makes it again, and nothing is left behind."""

from __future__ import annotations

import json
import time

from tests.conftest import ROOT

EXAMPLE = str(ROOT / "examples" / "sweep")


def test_a_sweep_killed_while_making_its_machines_resumes_and_leaves_nothing(trainrig, popen_trainrig, state_home,
                                                                               tmp_path):
    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "mid-up", "--param", "lr=0.01,0.1", "--trials", "2",
                       "--parallel", "2", "--objective", "val_loss:min", "--outputs", str(tmp_path / "out"))
    slot = state_home / "runs" / "sweep-mid-up-s1" / "record.json"
    end = time.monotonic() + 60
    while not slot.exists():  # being made (provisioning), perhaps up already
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.01)
    p.kill()
    p.wait()
    assert json.loads(slot.read_text())["sweep"] == "sweep-mid-up"

    done = trainrig("sweep", "--resume", "sweep-mid-up", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["complete"] == 2
    for k in (1, 2):
        rec = state_home / "runs" / f"sweep-mid-up-s{k}" / "record.json"
        assert json.loads(rec.read_text())["state"] == "destroyed"
