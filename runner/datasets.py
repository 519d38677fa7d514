"""`trainrig dataset push/pull`: a local folder to or from a bucket (or another folder), incremental."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from runner.errors import BadInput, TrainrigError
from runner.events import EventSink, Progress, ignore
from runner.remote.location import BadLocation, Location, parse_location
from runner.remote.stores import StoreError, open_store
from runner.remote.sync import SyncResult, pull, push
from runner.workspace import state_dir


@dataclass(frozen=True)
class DatasetSync:
    result: SyncResult
    seconds: float


def location(text: str) -> Location:
    try:
        return parse_location(text)
    except BadLocation as e:
        raise BadInput(str(e)) from e


def _store_error(e: StoreError) -> TrainrigError:
    return BadInput(str(e)) if e.kind in ("missing_bucket", "denied", "no_credentials") else TrainrigError(str(e))


def _index_path(folder: Path, where: Location) -> Path:
    """The checksum cache for this folder/location pair, in trainrig's state folder (not the dataset)."""
    key = hashlib.sha256(f"{folder.resolve()}\0{where}".encode()).hexdigest()[:24]
    return state_dir() / "sync-index" / f"{key}.json"


def _progress(label: str, on_event: EventSink):  # type: ignore[no-untyped-def]
    return lambda nbytes, files: on_event(Progress(label, nbytes, 0, files))


def push_dataset(folder: str, uri: str, delete: bool = False, on_event: EventSink = ignore) -> DatasetSync:
    src = Path(folder).expanduser()
    if not src.is_dir():
        raise BadInput(f"the dataset folder {folder} does not exist: give the folder to upload.")
    dst = location(uri)
    store = open_store(dst)
    t0 = time.monotonic()
    try:
        store.check(write=True)
        result = push(str(src), store, str(_index_path(src, dst)), delete=delete, progress=_progress("push", on_event))
    except StoreError as e:
        raise _store_error(e) from e
    return DatasetSync(result, time.monotonic() - t0)


def pull_dataset(uri: str, folder: str, delete: bool = False, on_event: EventSink = ignore) -> DatasetSync:
    src = location(uri)
    dst = Path(folder).expanduser()
    store = open_store(src)
    t0 = time.monotonic()
    try:
        store.check(write=False)
        result = pull(store, str(dst), str(_index_path(dst, src)), delete=delete, progress=_progress("pull", on_event))
    except StoreError as e:
        raise _store_error(e) from e
    return DatasetSync(result, time.monotonic() - t0)
