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
        dst = self._path(rel)
        tmp = atomic_target(dst)
        shutil.copyfile(local_path, tmp)
        st = os.stat(local_path)
        os.utime(tmp, ns=(st.st_mtime_ns, st.st_mtime_ns))
        os.replace(tmp, dst)

    def download(self, rel, local_path, size=None):
        tmp = atomic_target(local_path)
        src = self._path(rel)
        shutil.copyfile(src, tmp)
        st = os.stat(src)
        os.utime(tmp, ns=(st.st_mtime_ns, st.st_mtime_ns))
        os.replace(tmp, local_path)

    def delete(self, rel):
        try:
            os.unlink(self._path(rel))
        except FileNotFoundError:
            pass
