"""The one sync, against real servers on loopback: moto's S3 server, the GCS emulator, and folders."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from runner.remote.location import BadLocation, parse_location
from runner.remote.stores import StoreError, open_store
from runner.remote.sync import pull, push
from tests.conftest import make_bucket


@pytest.fixture
def servers(bucket_servers):  # type: ignore[no-untyped-def]
    return bucket_servers


@pytest.fixture(params=["s3", "gs", "file"])
def where(request, servers, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "file":
        return parse_location(str(tmp_path / "store"))
    return parse_location(f"{request.param}://{make_bucket(request.param)}/datasets/beer v2")


def dataset(root: Path) -> dict[str, bytes]:
    files = {
        "labels.csv": b"a,b\n1,2\n",
        "images/cat 1.jpg": os.urandom(3000),
        "images/ünïcødé ✓.png": os.urandom(100),
        "empty.txt": b"",
        "deep/er/still/x.bin": os.urandom(70_000),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_push_pull_round_trip_and_unchanged_resync_moves_nothing(where, tmp_path):
    src = tmp_path / "src"
    files = dataset(src)
    store = open_store(where)
    store.check(write=True)
    first = push(str(src), store, str(tmp_path / "push.idx"))
    assert (first.files_total, first.files_copied) == (5, 5)
    again = push(str(src), store, str(tmp_path / "push.idx"))
    assert (again.files_copied, again.bytes_copied) == (0, 0)
    # a fresh cache must reach the same verdict from the store's checksums alone
    assert push(str(src), store, str(tmp_path / "other.idx")).files_copied == 0
    got = pull(store, str(tmp_path / "dst"), str(tmp_path / "pull.idx"))
    assert got.files_copied == 5 and tree(tmp_path / "dst") == files
    assert pull(store, str(tmp_path / "dst"), str(tmp_path / "pull.idx")).files_copied == 0


def test_a_changed_file_is_sent_and_deletions_only_when_asked(where, tmp_path):
    src = tmp_path / "src"
    dataset(src)
    store = open_store(where)
    store.check(write=True)
    push(str(src), store, str(tmp_path / "i"))
    (src / "labels.csv").write_bytes(b"a,b\n9,9\n")  # same size, other bytes
    (src / "empty.txt").unlink()
    r = push(str(src), store, str(tmp_path / "i"))
    assert (r.files_copied, r.deleted) == (1, 0)
    assert "empty.txt" in {o.rel for o in store.objects()}
    r = push(str(src), store, str(tmp_path / "i"), delete=True)
    assert (r.files_copied, r.deleted) == (0, 1)
    assert "empty.txt" not in {o.rel for o in store.objects()}


def test_an_interrupted_sync_finishes_without_redoing_work(where, tmp_path):
    src = tmp_path / "src"
    for i in range(60):
        (src / f"f{i:03d}").parent.mkdir(parents=True, exist_ok=True)
        (src / f"f{i:03d}").write_bytes(os.urandom(500))
    store = open_store(where)
    store.check(write=True)

    class Interrupted(Exception):
        pass

    def stop_at_20(nbytes, files):
        if files >= 20:
            raise Interrupted

    with pytest.raises(Interrupted):
        push(str(src), store, str(tmp_path / "i"), progress=stop_at_20, workers=2)
    done_before = len(list(store.objects()))
    assert 20 <= done_before < 60
    rest = push(str(src), store, str(tmp_path / "i"))
    assert rest.files_copied == 60 - done_before
    assert len(list(store.objects())) == 60


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_200_mb_file_goes_and_comes_back_intact(scheme, servers, tmp_path):
    where = parse_location(f"{scheme}://{make_bucket(scheme)}/big")
    src = tmp_path / "src"
    src.mkdir()
    block = os.urandom(1 << 20)
    with open(src / "weights.bin", "wb") as f:
        for i in range(200):
            f.write(block[i:] + block[:i])
    store = open_store(where)
    push(str(src), store, str(tmp_path / "i"))
    obj = next(iter(store.objects()))
    assert obj.size == 200 << 20
    if scheme == "s3":
        assert obj.s3_multipart_etag and obj.s3_multipart_etag.endswith("-25")  # 8 MiB parts
    assert push(str(src), store, str(tmp_path / "i2")).files_copied == 0  # the multipart ETag matched
    pull(store, str(tmp_path / "dst"), str(tmp_path / "p"))
    assert (tmp_path / "dst" / "weights.bin").read_bytes() == (src / "weights.bin").read_bytes()


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_missing_bucket_is_named(scheme, servers):
    store = open_store(parse_location(f"{scheme}://trainrig-no-such-bucket-{uuid.uuid4().hex[:6]}/x"))
    with pytest.raises(StoreError) as e:
        store.check(write=False)
    assert e.value.kind == "missing_bucket" and "does not exist" in str(e.value)


@pytest.mark.parametrize("text", ["s3://UPPER/x", "gs://a/../b", "ftp://host/x", "s3://"])
def test_malformed_locations(text):
    with pytest.raises(BadLocation):
        parse_location(text)


def test_pull_with_delete_refuses_an_empty_source(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(StoreError, match="refusing to delete everything"):
        pull(open_store(parse_location(str(tmp_path / "empty"))), str(tmp_path / "mine"), None, delete=True)
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep"


def test_object_keys_that_would_leave_the_folder_are_skipped_and_reported(servers, tmp_path):
    import boto3

    bucket = make_bucket("s3")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="data/ok.txt", Body=b"ok")
    s3.put_object(Bucket=bucket, Key="data/../evil.txt", Body=b"evil")
    r = pull(open_store(parse_location(f"s3://{bucket}/data")), str(tmp_path / "in"), None)
    assert (r.files_copied, [p for p, _ in r.skipped]) == (1, ["../evil.txt"])
    assert not (tmp_path / "evil.txt").exists() and (tmp_path / "in" / "ok.txt").read_bytes() == b"ok"


def test_a_store_listing_out_of_order_is_refused_not_merged(tmp_path):
    from runner.remote.stores.folder import FolderStore

    class Unsorted(FolderStore):
        def objects(self):
            return reversed(list(super().objects()))

    for name in ("a", "b", "c"):
        (tmp_path / "store").mkdir(exist_ok=True)
        (tmp_path / "store" / name).write_text(name)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "b").write_text("b")
    with pytest.raises(StoreError, match="not in key order"):
        push(str(tmp_path / "local"), Unsorted(parse_location(str(tmp_path / "store"))), None, delete=True)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["a", "b", "c"]


def test_checkpoints_reach_the_store_only_after_every_other_output(where, tmp_path):
    """A sync cut off part way (a machine lost mid-sync) never leaves a checkpoint in the store whose
    earlier outputs are missing: a run resumed from it would skip them for good."""
    src = tmp_path / "outputs"
    (src / "checkpoints").mkdir(parents=True)
    for i in range(40):
        (src / f"step-{i:03d}.txt").write_bytes(os.urandom(300))
    (src / "checkpoints" / "checkpoint-39.txt").write_text("39")
    store = open_store(where)
    store.check(write=True)

    class Cut(Exception):
        pass

    def cut_at_20(nbytes, files):
        if files >= 20:
            raise Cut

    def is_checkpoint(path: str) -> bool:
        return path.startswith("checkpoints/")

    with pytest.raises(Cut):
        push(str(src), store, str(tmp_path / "i"), progress=cut_at_20, workers=2, last=is_checkpoint)
    arrived = [o.rel for o in store.objects()]
    assert "checkpoints/checkpoint-39.txt" not in arrived  # sorted first, yet held back
    push(str(src), store, str(tmp_path / "i"), last=is_checkpoint)
    assert len([o.rel for o in store.objects()]) == 41
