"""The reserved slots that keep a status and a run record writable on a full disk (a real tmpfs,
filled to its last byte): saves land there, readers take the newest copy, a copy saved later in
the file wins again, and a writer holding an older copy still saves something readers take."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from infra.spec import EntryPoint, RunSpec
from runner.journal import Journal, RunRecord
from runner.remote import slots
from runner.remote.status import Status, read_status, reserve_status, write_status


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, text=True)
        why = r.stderr.strip()
    except FileNotFoundError:
        r, why = None, "no mount command"
    if r is None or r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({why or 'not permitted'}): this test needs root (or CAP_SYS_ADMIN)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> None:
    with open(disk / "filler", "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_status_saved_on_a_full_disk_is_read_back_newest_first(tiny_disk: Path) -> None:
    path = str(tiny_disk / "status.json")
    assert reserve_status(path)
    s = Status(run_id="r")
    assert write_status(path, s) == "file"
    _fill(tiny_disk)
    for phase in ("training", "syncing", "finished"):
        s.enter(phase)
        assert write_status(path, s) == "reserve"
        assert read_status(path).phase == phase
    assert json.loads(Path(path).read_text())["phase"] == "preparing"  # the file itself is the old one
    (tiny_disk / "filler").unlink()
    s.outcome = "succeeded"
    assert write_status(path, s) == "file"
    assert read_status(path).outcome == "succeeded"
    assert slots.reserve_seq(path) == 0  # cleared: an older slot can never outrank the file again


def test_a_record_saved_by_a_writer_holding_an_older_copy_is_the_one_read(tiny_disk: Path) -> None:
    journal = Journal(tiny_disk)
    record = RunRecord(spec=RunSpec(code_name="slot", dataset_name="none", code_path="/nowhere", entry=EntryPoint(module="train")))
    journal.save(record)
    stale = journal.load(record.run_id)
    for state in ("up", "started", "finished"):
        record.state = state
        journal.save(record)  # another command, meanwhile
    _fill(tiny_disk)
    stale.state = "destroyed"
    journal.save(stale)
    assert journal.load(record.run_id).state == "destroyed"
    assert [r.state for r in journal.all()] == ["destroyed"]
