"""Folder transfer protocol, sans I/O: an offerer lists files, the receiver answers which it needs,
the offerer streams them as frames (raw or zlib chunks), the receiver writes them atomically.

Used in both directions: code and dataset uploads (the user's computer offers) and output
downloads (the machine offers). Neither side here touches a socket: callers move the bytes.
A transfer cut off anywhere resumes: whole files are in place under their names, the file that was
arriving is continued from its temporary file once the offerer has checked that prefix. File names
travel as JSON strings whose undecodable bytes are surrogates (see listing.py): byte for byte.
"""

import json
import os

from .index import FileIndex  # noqa: F401 (the receiver's index, imported from here)
from .listing import FOLLOW, INSIDE, TMP_SUFFIX, Entry, scan, shown, wire_bytes  # noqa: F401 (the protocol's names)
from .wire_frames import (  # noqa: F401 (the byte stream's names, imported from here)
    _DATA,
    _FILE,
    _RESUME,
    CHUNK,
    COMPRESS_WORTH,
    Decoder,
    ProtocolError,
    file_hash,
    frames,
    safe_join,
)


def encode_offer(entries, left_out=()):
    """The offer line: the files, and what the listing left out ([path, reason]) so that the
    receiving side can say it. JSON's \\u escapes carry undecodable name bytes (surrogates) intact."""
    offer = {"entries": [e.row() for e in entries], "left_out": [list(x) for x in left_out]}
    return (json.dumps(offer, separators=(",", ":")) + "\n").encode()


def decode_offer(line, left_out=None):
    offer = json.loads(line)
    if left_out is not None:
        left_out.extend(tuple(x) for x in offer.get("left_out", ()))
    return [Entry(*row) for row in offer["entries"]]


def plan(root, entries, index, mirror):
    """Indices of `entries` the receiver must get; with `mirror`, delete indexed files no longer offered.
    A file already in place with the offered size and mtime is kept even if the index does not know
    it (a transfer killed before it saved its index): it was renamed into place whole."""
    need = []
    for i, e in enumerate(entries):
        try:
            st = os.stat(safe_join(root, e.path))
        except OSError:
            st = None
        if st is not None and st.st_size == e.size and st.st_mtime_ns == e.mtime_ns:
            if index.get(e.path, e.size, e.mtime_ns, "sha256") is None:
                index.put(e.path, e.size, e.mtime_ns, sha256=file_hash(safe_join(root, e.path), e.size).hexdigest())
            continue
        need.append(i)
    deleted = 0
    if mirror:
        offered = {e.path for e in entries}
        for path in [p for p in index.files if p not in offered]:
            try:
                os.unlink(safe_join(root, path))
            except FileNotFoundError:
                pass
            index.forget(path)
            deleted += 1
            _prune_empty(root, os.path.dirname(path))
    return need, deleted


def partials(root, entries, need):
    """{i: (offset, sha256 of those bytes)} for files of `need` whose earlier transfer was cut off:
    their temporary file holds a prefix, which the offerer checks against its own before it sends
    only the rest (a source that changed meanwhile is sent whole)."""
    found = {}
    for i in need:
        e = entries[i]
        try:
            size = os.stat(safe_join(root, e.path) + TMP_SUFFIX).st_size
        except OSError:
            continue
        if 0 < size <= e.size:
            found[i] = (size, file_hash(safe_join(root, e.path) + TMP_SUFFIX, size))
    return found


def encode_resume(found):
    return {str(i): [offset, h.hexdigest()] for i, (offset, h) in found.items()}


def decode_resume(obj):
    return {int(i): (offset, digest) for i, (offset, digest) in (obj or {}).items()}


def remove_partials(root):
    """Delete temporary files left by transfers that were cut off (for a file no longer offered)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            if name.endswith(TMP_SUFFIX):
                try:
                    os.unlink(os.path.join(dirpath, name))
                except OSError:
                    pass


def _prune_empty(root, rel_dir):
    """Remove `rel_dir` and its parents while they are empty (a class folder of a dataset that
    is gone must not stay behind as an empty class)."""
    while rel_dir:
        try:
            os.rmdir(safe_join(root, rel_dir))
        except OSError:
            return
        rel_dir = os.path.dirname(rel_dir)
