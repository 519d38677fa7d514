"""One sync for folders, S3 and GCS: push a local folder to a location, or pull one into a folder.

Incremental: an object is copied when it is missing or differs in size or checksum (MD5, S3's
multipart ETag, GCS's CRC32C; between two folders size and modification time). Checksums of local
files are cached by (size, mtime) beside the caller's state, so an unchanged re-sync reads no file.
Listings are streamed and merged in key order; transfers run in a bounded pool of threads, so memory
does not grow with the number of files. An interrupted sync run again redoes only what had not
finished. Deletions are propagated only with `delete=True`. The index of checksums is the transfer
protocol's too (index.py): a pull's tree hash is the one a transfer of the same files gives.
"""

import base64
import os
import threading
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from . import wire
from .index import FileIndex
from .stores.base import S3_PART, StoreError, md5_file, s3_multipart_etag

WORKERS = 16


@dataclass
class SyncResult:
    files_total: int = 0
    files_copied: int = 0
    bytes_copied: int = 0
    deleted: int = 0
    skipped: list = field(default_factory=list)  # (path, why): vanished files, unsafe object keys
    tree_hash: str = ""  # a pull's with tree_hash=True: the store's files as they now are here (index.py)


def _crc32c(path):
    import google_crc32c  # comes with google-cloud-storage; only GCS objects need it

    c = google_crc32c.Checksum()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            c.update(block)
    return base64.b64encode(c.digest()).decode()


def _same(root, e, obj, index):
    """Does local entry `e` hold the same bytes as object `obj`?"""
    if e.size != obj.size:
        return False
    if obj.mtime_ns is not None:
        return obj.mtime_ns == e.mtime_ns
    path = os.path.join(root, *e.path.split("/"))
    if obj.md5:
        kind, value, compute = "md5", obj.md5, md5_file
    elif obj.s3_multipart_etag:
        parts = int(obj.s3_multipart_etag.rsplit("-", 1)[1])
        kind, value, compute = "etag", obj.s3_multipart_etag, lambda p: s3_multipart_etag(p, parts)
    elif obj.crc32c:
        kind, value, compute = "crc32c", obj.crc32c, _crc32c
    else:
        return False
    known = index.get(e.path, e.size, e.mtime_ns, kind)
    if known is None:
        known = compute(path)
        index.put(e.path, e.size, e.mtime_ns, **{kind: known})
    return known == value


def _ordered(items, key, what):
    """Pass `items` through, refusing a listing that is not strictly sorted: merging one would
    pair the wrong files (and, with deletions, delete what still exists)."""
    last = None
    for item in items:
        k = key(item)
        if last is not None and k <= last:
            raise StoreError("other", "the %s listing is not in key order (%r after %r): refusing to sync" % (what, k, last))
        last = k
        yield item


def _merge(local_entries, remote_objects):
    """Pairs (local entry or None, remote object or None) in key order; both inputs sorted."""
    local_iter = _ordered(local_entries, lambda e: e.path.encode("utf-8", "surrogateescape"), "local")
    remote_iter = _ordered(remote_objects, lambda o: o.rel.encode("utf-8", "surrogateescape"), "store")
    le, ro = next(local_iter, None), next(remote_iter, None)
    while le is not None or ro is not None:
        lk = le.path.encode("utf-8", "surrogateescape") if le is not None else None
        rk = ro.rel.encode("utf-8", "surrogateescape") if ro is not None else None
        if rk is None or (lk is not None and lk < rk):
            yield le, None
            le = next(local_iter, None)
        elif lk is None or rk < lk:
            yield None, ro
            ro = next(remote_iter, None)
        else:
            yield le, ro
            le, ro = next(local_iter, None), next(remote_iter, None)


class _Pool:
    """A thread pool with a bounded number of tasks in flight (memory stays flat)."""

    def __init__(self, workers):
        self.ex = ThreadPoolExecutor(workers)
        self.limit = workers * 4
        self.pending = set()

    def submit(self, fn, *args):
        if len(self.pending) >= self.limit:
            self._reap(FIRST_COMPLETED)
        self.pending.add(self.ex.submit(fn, *args))

    def _reap(self, when):
        done, self.pending = wait(self.pending, return_when=when)
        for f in done:
            f.result()  # re-raise the first failure

    def finish(self):
        self._reap(ALL_COMPLETED)

    def close(self):
        """Cancel what has not started, wait for what has (after a failure or an interrupt)."""
        for f in self.pending:
            f.cancel()  # (shutdown's cancel_futures is Python 3.9+; the machine may have 3.8)
        self.ex.shutdown(wait=True)


def _local_entries(root, skip=None):
    entries = wire.scan(root, skip)
    entries.sort(key=lambda e: e.path.encode("utf-8", "surrogateescape"))
    return entries


def push(local_root, store, index_path=None, delete=False, progress=None, workers=WORKERS, skip=None, last=None):
    """Make `store` hold what `local_root` holds. `progress(bytes, files)` is called as work is done.
    Files for which `last(path)` is true are sent only once every other file has arrived: a
    checkpoint in the store then means what was written before it is there too (a sync cut off by a
    crash never leaves a checkpoint to resume from whose outputs are missing)."""
    index = FileIndex(index_path)
    result = SyncResult()
    lock = threading.Lock()

    def send(e):
        path = os.path.join(local_root, *e.path.split("/"))
        try:
            store.upload(path, e.path, e.size)
        except FileNotFoundError:
            # Saved to a temporary name and renamed away while we listed (checkpoint writers do).
            with lock:
                result.skipped.append((e.path, "gone before it could be sent"))
            return
        # Remember the checksum the bucket will report, so the next sync reads nothing (a folder
        # store compares modification times instead).
        if store.location.is_bucket and (e.size < S3_PART or store.location.scheme != "s3"):
            index.put(e.path, e.size, e.mtime_ns, md5=md5_file(path))
        _copied(result, lock, e.size, progress)

    pool = _Pool(workers)
    doomed, deferred = [], []
    try:
        for e, obj in _merge(_local_entries(local_root, skip), store.objects()):
            if e is not None:
                result.files_total += 1
                try:
                    unchanged = obj is not None and _same(local_root, e, obj, index)
                except FileNotFoundError:
                    result.skipped.append((e.path, "gone before it could be sent"))
                    continue
                if unchanged:
                    continue
                if last is not None and last(e.path):
                    deferred.append(e)
                else:
                    pool.submit(send, e)
            elif delete:
                doomed.append(obj.rel)
        # Deletions only once the whole listing has been read and found in order.
        for rel in doomed:
            pool.submit(store.delete, rel)
            result.deleted += 1
        pool.finish()
        for e in deferred:
            pool.submit(send, e)
        pool.finish()
    finally:
        pool.close()
        index.save()
    return result


def _copied(result, lock, nbytes, progress):
    with lock:
        result.files_copied += 1
        result.bytes_copied += nbytes
        if progress:
            progress(result.bytes_copied, result.files_copied)


def _has_any(store):
    return next(iter(store.objects()), None) is not None


def pull(store, local_root, index_path=None, delete=False, progress=None, workers=WORKERS, tree_hash=False):
    """Make `local_root` hold what `store` holds (files only there stay unless `delete`). With
    `tree_hash`, the result's is that of the store's files (each file read once more here, right
    after it arrived, for its sha256: the stores' checksums differ from one store to the next)."""
    index = FileIndex(index_path)
    result = SyncResult()
    lock = threading.Lock()
    pulled, gone = [], set()
    os.makedirs(local_root, exist_ok=True)
    if delete and not _has_any(store):
        # A mistyped or empty location must not wipe the folder.
        raise StoreError("other", "%s is empty: refusing to delete everything in %s" % (store.location, local_root))

    def fetch(obj):
        path = wire.safe_join(local_root, obj.rel)
        try:
            store.download(obj.rel, path, obj.size)
        except StoreError as e:
            if e.kind != "missing_object":
                raise
            with lock:
                result.skipped.append((obj.rel, "deleted from the store while we pulled"))
                gone.add(obj.rel)
            return
        st = os.stat(path)
        sha256 = wire.file_hash(path, st.st_size).hexdigest() if tree_hash else None
        index.put(obj.rel, st.st_size, st.st_mtime_ns, fresh=True, md5=obj.md5, etag=obj.s3_multipart_etag,
                  crc32c=obj.crc32c, sha256=sha256)
        _copied(result, lock, obj.size, progress)

    pool = _Pool(workers)
    doomed = []
    try:
        for e, obj in _merge(_local_entries(local_root), store.objects()):
            if obj is not None:
                result.files_total += 1
                try:
                    wire.safe_join(local_root, obj.rel)
                except wire.ProtocolError:
                    result.skipped.append((obj.rel, "a key that is no safe file name here"))
                    continue
                if tree_hash:
                    pulled.append(obj.rel)
                if e is None or not _same(local_root, e, obj, index):
                    pool.submit(fetch, obj)
            elif delete:
                doomed.append(e.path)
        for rel in doomed:  # only once the whole listing has been read and found in order
            os.unlink(os.path.join(local_root, *rel.split("/")))
            result.deleted += 1
        pool.finish()
        if tree_hash:
            result.tree_hash = index.tree_hash([p for p in pulled if p not in gone], root=local_root)
    finally:
        pool.close()
        index.save()
    return result
