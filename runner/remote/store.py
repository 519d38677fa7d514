"""The run's output store: where outputs and logs are synced during training and fetched from.

Until bucket stores exist, the store is a folder on the machine (`<run>/store/`); a sync copies new
and changed files atomically, so a crash half-way leaves the previous copy intact. Deletions are not
propagated: a checkpoint the training removed stays in the store.
"""

import os
import shutil

from . import wire


class FolderStore:
    def __init__(self, root):
        self.root = root

    def sync(self, src, name):
        """Copy what changed in `src` to `<store>/<name>`; returns (files, bytes) copied."""
        dst_root = os.path.join(self.root, name)
        files = nbytes = 0
        for e in wire.scan(src):
            dst = os.path.join(dst_root, *e.path.split("/"))
            try:
                st = os.stat(dst)
                if st.st_size == e.size and st.st_mtime_ns == e.mtime_ns:
                    continue
            except FileNotFoundError:
                pass
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            tmp = dst + wire.TMP_SUFFIX
            try:
                shutil.copyfile(os.path.join(src, *e.path.split("/")), tmp)
            except FileNotFoundError:
                continue  # deleted by the training while we synced
            os.utime(tmp, ns=(e.mtime_ns, e.mtime_ns))
            os.replace(tmp, dst)
            files += 1
            nbytes += e.size
        return files, nbytes
