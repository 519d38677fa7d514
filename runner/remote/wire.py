"""Folder transfer protocol, sans I/O: an offerer lists files, the receiver answers which it needs,
the offerer streams them as frames (raw or zlib chunks), the receiver writes them atomically.

Used in both directions: code and dataset uploads (the user's computer offers) and output
downloads (the machine offers). Neither side here touches a socket: callers move the bytes.
"""

import hashlib
import json
import os
import stat
import struct
import zlib

CHUNK = 1 << 20
TMP_SUFFIX = ".trainrig-part"
# A file whose first chunk compresses to more than this share is sent raw (images, weights, archives).
COMPRESS_WORTH = 0.9
_FILE = struct.Struct("!cIQ")
_DATA = struct.Struct("!cI")


class ProtocolError(Exception):
    """The byte stream does not follow the protocol (a bug or a corrupted connection)."""


class Entry:
    """One regular file of a folder: path relative to the folder, with '/' separators."""

    __slots__ = ("path", "size", "mtime_ns", "mode")

    def __init__(self, path, size, mtime_ns, mode):
        self.path, self.size, self.mtime_ns, self.mode = path, size, mtime_ns, mode

    def row(self):
        return [self.path, self.size, self.mtime_ns, self.mode]


def scan(root, skip=None):
    """Regular files under `root`, sorted; `skip(relpath, is_dir)` prunes. Symlinks to files are followed."""
    out = []
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        if skip is not None:
            dirnames[:] = [d for d in dirnames if not skip(rel_dir + d, True)]
        dirnames.sort()
        for name in sorted(filenames):
            rel = rel_dir + name
            if TMP_SUFFIX in name or (skip is not None and skip(rel, False)):
                continue
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue  # a broken symlink, or a file deleted while we walk
            if not stat.S_ISREG(st.st_mode):
                continue
            out.append(Entry(rel, st.st_size, st.st_mtime_ns, st.st_mode & 0o777))
    return out


def encode_offer(entries):
    return (json.dumps({"entries": [e.row() for e in entries]}, separators=(",", ":")) + "\n").encode()


def decode_offer(line):
    return [Entry(*row) for row in json.loads(line)["entries"]]


def safe_join(root, rel):
    """`root/rel`, refusing paths that would leave `root` (absolute, '..')."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ProtocolError("unsafe path in transfer: %r" % rel)
    return os.path.join(root, *parts)


class Index:
    """What a receiver folder holds, by path: [size, mtime_ns, sha256]; kept in a JSON file beside it."""

    def __init__(self, path):
        self.path = path
        self.files = {}
        if path and os.path.exists(path):
            with open(path) as f:
                self.files = json.load(f)

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.files, f, separators=(",", ":"), sort_keys=True)
        os.replace(tmp, self.path)

    def tree_hash(self, paths=None):
        h = hashlib.sha256()
        for p in sorted(self.files if paths is None else paths):
            h.update(p.encode() + b"\0" + self.files[p][2].encode() + b"\n")
        return h.hexdigest()


def plan(root, entries, index, mirror):
    """Indices of `entries` the receiver must get; with `mirror`, delete indexed files no longer offered."""
    need = []
    for i, e in enumerate(entries):
        known = index.files.get(e.path)
        if known and known[0] == e.size and known[1] == e.mtime_ns:
            try:
                st = os.stat(safe_join(root, e.path))
                if st.st_size == e.size and st.st_mtime_ns == e.mtime_ns:
                    continue
            except OSError:
                pass
        need.append(i)
    deleted = 0
    if mirror:
        offered = {e.path for e in entries}
        for path in [p for p in index.files if p not in offered]:
            try:
                os.unlink(safe_join(root, path))
            except FileNotFoundError:
                pass
            del index.files[path]
            deleted += 1
            _prune_empty(root, os.path.dirname(path))
    return need, deleted


def _prune_empty(root, rel_dir):
    """Remove `rel_dir` and its parents while they are empty (a class folder of a dataset that
    is gone must not stay behind as an empty class)."""
    while rel_dir:
        try:
            os.rmdir(safe_join(root, rel_dir))
        except OSError:
            return
        rel_dir = os.path.dirname(rel_dir)


def frames(root, entries, need):
    """The frames that carry files `need` of `entries` from `root` (reads the files lazily)."""
    for i in need:
        e = entries[i]
        yield _FILE.pack(b"F", i, e.size)
        compress = e.size >= 256
        sent = 0
        with open(os.path.join(root, *e.path.split("/")), "rb") as f:
            while sent < e.size:
                chunk = f.read(min(CHUNK, e.size - sent))
                if not chunk:
                    break  # the file shrank while we sent it; the receiver will notice
                sent += len(chunk)
                if compress:
                    z = zlib.compress(chunk, 1)
                    if len(z) < len(chunk) * COMPRESS_WORTH:
                        yield _DATA.pack(b"Z", len(z)) + z
                        continue
                    compress = False
                yield _DATA.pack(b"D", len(chunk)) + chunk
        yield b"E"
    yield b"X"


class Decoder:
    """Consumes frames, writes each file to a temporary name and renames it once complete."""

    def __init__(self, root, entries, index, on_bytes=None):
        self.root, self.entries, self.index = root, entries, index
        self.on_bytes = on_bytes
        self.buf = bytearray()
        self.done = False
        self.files = 0
        self.bytes = 0
        self._cur = None  # (entry, file, sha256, tmp path, written)
        self._made_dirs = set()
        self._need = 0

    def feed(self, data):
        if self.buf:
            self.buf += data
            # Pipes deliver 64 KiB at a time: wait until the pending frame is whole instead of
            # re-parsing (and copying) a growing buffer on every piece.
            if len(self.buf) < self._need:
                return
            data = bytes(self.buf)
            self.buf.clear()
        # Parse straight out of `data` through a memoryview: big chunks are written without a copy.
        view = memoryview(data)
        pos, end = 0, len(data)
        while not self.done and pos < end:
            kind = data[pos:pos + 1]
            if kind in (b"D", b"Z"):
                if end - pos < _DATA.size:
                    break
                _, n = _DATA.unpack_from(data, pos)
                if end - pos < _DATA.size + n:
                    break
                payload = view[pos + _DATA.size:pos + _DATA.size + n]
                pos += _DATA.size + n
                self._write(zlib.decompress(payload) if kind == b"Z" else payload)
            elif kind == b"F":
                if end - pos < _FILE.size:
                    break
                _, i, size = _FILE.unpack_from(data, pos)
                pos += _FILE.size
                self._open(i, size)
            elif kind == b"E":
                pos += 1
                self._close()
            elif kind == b"X":
                pos += 1
                self.done = True
            else:
                raise ProtocolError("unknown frame %r" % kind)
        if pos < end:
            self.buf += view[pos:]
            self._need = self._frame_size(data, pos)
        view.release()

    @staticmethod
    def _frame_size(data, pos):
        """Bytes the frame starting at `pos` needs (its header's size while that is incomplete)."""
        kind = data[pos:pos + 1]
        if kind in (b"D", b"Z"):
            if len(data) - pos >= _DATA.size:
                return _DATA.size + _DATA.unpack_from(data, pos)[1]
            return _DATA.size
        return _FILE.size if kind == b"F" else 1

    def _open(self, i, size):
        if self._cur is not None or i >= len(self.entries) or self.entries[i].size != size:
            raise ProtocolError("unexpected file frame %d" % i)
        e = self.entries[i]
        target = safe_join(self.root, e.path)
        parent = os.path.dirname(target)
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        tmp = target + TMP_SUFFIX
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._cur = [e, fd, hashlib.sha256(), tmp, 0]

    def _write(self, data):
        cur = self._cur
        if cur is None:
            raise ProtocolError("data outside a file")
        view = memoryview(data)
        while view:
            view = view[os.write(cur[1], view):]
        cur[2].update(data)
        cur[4] += len(data)
        self.bytes += len(data)
        if self.on_bytes:
            self.on_bytes(len(data))

    def _close(self):
        e, fd, h, tmp, written = self._cur
        self._cur = None
        if written != e.size:
            os.close(fd)
            os.unlink(tmp)
            raise ProtocolError("%s changed while it was sent (%d of %d bytes); send it again" % (e.path, written, e.size))
        os.fchmod(fd, e.mode | 0o600)  # the exact mode, whatever the umask
        os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        os.close(fd)
        os.replace(tmp, safe_join(self.root, e.path))
        self.index.files[e.path] = [e.size, e.mtime_ns, h.hexdigest()]
        self.files += 1
