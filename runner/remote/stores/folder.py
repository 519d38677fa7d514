"""A folder as a store (a plain copy on the same machine, or the machine's own output store)."""

import os
import shutil

from .. import wire
from .base import ObjectInfo, Store, StoreError, atomic_target


class FolderStore(Store):
    def __init__(self, location):
        self.location = location
        self.root = location.prefix

    def check(self, write):
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise StoreError("other", "%s is a file, not a folder" % self.root)
        if write:
            os.makedirs(self.root, exist_ok=True)
        elif not os.path.isdir(self.root):
            raise StoreError("missing_bucket", "the folder %s does not exist" % self.root)

    def objects(self):
        entries = wire.scan(self.root)
        entries.sort(key=lambda e: e.path.encode())
        for e in entries:
            yield ObjectInfo(e.path, e.size, mtime_ns=e.mtime_ns)

    def _path(self, rel):
        return wire.safe_join(self.root, rel)

    def upload(self, local_path, rel, size):
        _copy(local_path, self._path(rel))

    def download(self, rel, local_path, size=None):
        _copy(self._path(rel), local_path)

    def delete(self, rel):
        try:
            os.unlink(self._path(rel))
        except FileNotFoundError:
            pass


def _copy(src, dst):
    """Copy atomically; the copy takes the source's mtime only if the source did not change while
    it was copied (else a checkpoint rewritten mid-copy would look synced with the old bytes)."""
    tmp = atomic_target(dst)
    before = os.stat(src)
    try:
        shutil.copyfile(src, tmp)
    except BaseException:
        try:
            os.unlink(tmp)  # a cut copy (a full disk) must not keep holding its space
        except OSError:
            pass
        raise
    after = os.stat(src)
    if (before.st_mtime_ns, before.st_size, before.st_ino) == (after.st_mtime_ns, after.st_size, after.st_ino):
        os.utime(tmp, ns=(before.st_mtime_ns, before.st_mtime_ns))
    os.replace(tmp, dst)
