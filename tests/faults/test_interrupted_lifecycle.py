"""A run left half destroyed (a `down` killed midway) or half made (an `up` killed midway): every
command points to `trainrig down RUN`, which finishes the job and leaves nothing behind."""

from __future__ import annotations

import pytest

from runner.journal import Journal
from runner.outcomes import after_interrupt
from tests.conftest import make_code


@pytest.mark.parametrize("left", ["destroying", "provisioning"])
def test_every_command_points_to_down_which_finishes_it(left, trainrig, tmp_path, state_home):
    code = make_code(tmp_path / f"half{left[:4]}", "print('trained')\n")
    rid = f"half{left[:4]}-none"
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    journal = Journal(state_home)
    record = journal.load(rid)
    server = record.local_server_pid
    assert "trainrig down" not in after_interrupt(journal, rid)  # an `up` run interrupted later: nothing to undo
    record.state = left  # what the killed command left in the journal (its machine may be half gone)
    journal.save(record)
    # What an interrupted command (a second Ctrl-C during `up`) prints: the `down` run below.
    assert f"`trainrig down {rid}`" in after_interrupt(journal, rid)
    try:
        for args in (["start", rid], ["logs", rid], ["logs", rid, "-f"], ["stop", rid], ["tensorboard", rid],
                     ["download", rid], ["up", rid], ["run", rid]):
            done = trainrig(*args)
            assert done.code == 2, (args, done.err)
            assert f"`trainrig down {rid}`" in done.err, (args, done.err)
        assert journal.load(rid).state == left  # nothing changed by the refusals
        done = trainrig("down", rid)
        assert done.code == 0, done.err
        assert journal.load(rid).state == "destroyed"
        assert not (state_home / "runs" / rid / "sandbox").exists()
        assert server and not _alive(server)
    finally:
        trainrig("down", rid, "--stop", "--discard-outputs")


def _alive(pid: int) -> bool:
    from runner.remote.procs import alive

    return alive(pid)
