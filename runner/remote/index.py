"""What a folder holds, by path: size, modification time and checksums, kept in a JSON file beside it.

One index for every way files arrive or leave: the transfer protocol (wire.py: code and dataset
uploads, output downloads from the machine) and the syncs with a store (sync.py: the dataset pull,
outputs and logs to a bucket, outputs downloaded from it). A file's checksums hold while its size and
mtime are unchanged. The tree hash is always over sha256 of the contents, so the same files give the
same hash (run.json's, the dataset's) wherever they came from; the stores' own checksums (md5, S3's
multipart ETag, GCS's CRC32C) are kept beside it only to compare with a store's listing.
"""

import hashlib
import json
import os
import threading

from .listing import wire_bytes
from .wire_frames import file_hash


class FileIndex:
    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()  # the syncs put from a pool of threads
        self.files = {}
        if path and os.path.exists(path):
            try:
                with open(path) as f:
                    loaded = json.load(f)
            except ValueError:
                loaded = {}  # a damaged index only costs a re-read
            for rel, rec in loaded.items():
                if isinstance(rec, list):  # written by an older trainrig's transfer: [size, mtime_ns, sha256]
                    rec = {"size": rec[0], "mtime_ns": rec[1], "sha256": rec[2]}
                self.files[rel] = rec

    def get(self, rel, size, mtime_ns, kind):
        """The checksum `kind` of `rel` if known for this size and mtime, else None."""
        rec = self.files.get(rel)
        if rec and rec.get("size") == size and rec.get("mtime_ns") == mtime_ns:
            return rec.get(kind)
        return None

    def put(self, rel, size, mtime_ns, fresh=False, **sums):
        """Checksums of `rel` as it is now (those of another size or mtime are dropped; all of them
        with `fresh`: the file was just written, whatever its size and mtime)."""
        with self._lock:
            rec = self.files.get(rel)
            if fresh or not rec or rec.get("size") != size or rec.get("mtime_ns") != mtime_ns:
                rec = self.files[rel] = {"size": size, "mtime_ns": mtime_ns}
            rec.update({k: v for k, v in sums.items() if v})

    def forget(self, rel):
        with self._lock:
            self.files.pop(rel, None)

    def sha256(self, root, rel):
        """sha256 of `root/rel`, from the index while the file is unchanged, else read (and kept)."""
        path = os.path.join(root, *rel.split("/"))
        st = os.stat(path)
        known = self.get(rel, st.st_size, st.st_mtime_ns, "sha256")
        if known is None:
            known = file_hash(path, st.st_size).hexdigest()
            self.put(rel, st.st_size, st.st_mtime_ns, sha256=known)
        return known

    def tree_hash(self, paths=None, root=None):
        """One hash of the paths (default: every indexed one) with their contents' sha256, in the
        order of their bytes. With `root`, each file's sha256 is checked against the file there
        (read where the index does not know it); without, the index's is taken as it is."""
        h = hashlib.sha256()
        for rel in sorted(self.files if paths is None else paths, key=wire_bytes):
            digest = self.sha256(root, rel) if root is not None else self.files[rel]["sha256"]
            h.update(wire_bytes(rel) + b"\0" + digest.encode() + b"\n")
        return h.hexdigest()

    def save(self):
        if not self.path:
            return
        path = os.path.realpath(self.path)  # a link (a sweep trial's, to its slot's index) stays one
        with self._lock:
            tmp = "%s.%d.tmp" % (path, os.getpid())
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            try:
                with open(tmp, "w") as f:
                    json.dump(self.files, f, separators=(",", ":"), sort_keys=True)
                os.replace(tmp, path)
            except BaseException:
                _unlink(tmp)  # a cut temporary file would only hold on to space on a full disk
                raise


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
