"""A run's buckets, seen from this computer: checked before anything starts, and read from at
download time (so outputs come home even when the machine is gone)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from infra.spec import RunSpec, is_bucket
from runner.errors import BadInput, TrainrigError
from runner.events import EventSink, Progress
from runner.remote import wire
from runner.remote.location import Location, parse_location
from runner.remote.status import Status
from runner.remote.stores import StoreError, open_store
from runner.remote.sync import pull
from runner.transfer import TransferResult

PACKAGES = {"s3": "boto3>=1.28", "gs": "google-cloud-storage>=2.10"}


def output_location(spec: RunSpec) -> Location | None:
    return parse_location(spec.output_store).child(spec.run_id) if spec.output_store else None


def tool_packages(spec: RunSpec) -> list[str]:
    """What the machine's tool venv needs for this run's buckets (none: no tool venv)."""
    schemes = {parse_location(u).scheme for u in (spec.dataset, spec.output_store) if is_bucket(u)}
    return sorted(PACKAGES[s] for s in schemes)


def _as_input_error(e: StoreError, what: str) -> TrainrigError:
    text = f"{what}: {e}"
    return BadInput(text) if e.kind in ("missing_bucket", "denied", "no_credentials") else TrainrigError(text)


def check_run_buckets(spec: RunSpec) -> None:
    """Refuse, before anything is created, a bucket that is missing or that we may not use."""
    try:
        if is_bucket(spec.dataset):
            open_store(parse_location(spec.dataset)).check(write=False)  # type: ignore[arg-type]
        out = output_location(spec)
        if out is not None:
            open_store(out).check(write=True)
    except StoreError as e:
        raise _as_input_error(e, "a bucket of this run cannot be used") from e


def fetch_outputs(spec: RunSpec, folder: Path, on_event: EventSink) -> tuple[Status | None, TransferResult, TransferResult]:
    """Outputs and logs from the run's output bucket into `folder`; with the status stored beside them."""
    where = output_location(spec)
    assert where is not None
    results = []
    try:
        for name in ("outputs", "logs"):
            with tempfile.TemporaryDirectory() as tmp:
                index_path = str(Path(tmp) / "index.json")
                # Into the folder of a download cut off earlier, files already whole are not fetched
                # again (pull compares their checksums); a file that was arriving is fetched whole.
                r = pull(open_store(where.child(name)), str(folder / name), index_path,
                         progress=lambda b, f, n=name: on_event(Progress(n, b, 0, f)), tree_hash=True)
                wire.remove_partials(str(folder / name))  # what a killed download was writing
                size = sum(e.size for e in wire.scan(str(folder / name)))
                results.append(TransferResult(r.files_total, r.files_copied, r.bytes_copied, 0, r.tree_hash,
                                              size, tuple(r.skipped)))
        status = stored_status(spec)
    except StoreError as e:
        raise _as_input_error(e, f"cannot download from {where}") from e
    return status, results[0], results[1]


def stored_object(spec: RunSpec, key: str) -> bytes | None:
    """One object of the run's output location (None: not there, or no output bucket). It outlives
    the machine: a cloud machine powers off after its last sync."""
    pieces: list[bytes] = []
    return b"".join(pieces) if copy_stored_object(spec, key, pieces.append) is not None else None


def copy_stored_object(spec: RunSpec, key: str, write: Callable[[bytes], object]) -> int | None:
    """Pass one object of the run's output location to `write` in pieces (bounded memory for a
    large log); its size, or None when it is not there."""
    where = output_location(spec)
    if where is None:
        return None
    folder, _, name = key.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        try:
            open_store(where.child(folder) if folder else where).download(name, str(path))
        except StoreError:
            return None
        size = 0
        with open(path, "rb") as f:
            while data := f.read(1 << 20):
                write(data)
                size += len(data)
        return size


def stored_log(spec: RunSpec) -> bytes | None:
    """The training log as last synced to the output bucket."""
    return stored_object(spec, "logs/train.log")


def stored_status(spec: RunSpec) -> Status | None:
    """The run's last status as the supervisor pushed it to the output bucket."""
    raw = stored_object(spec, "status.json")
    return Status.from_dict(json.loads(raw)) if raw else None
