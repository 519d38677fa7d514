"""The transfer protocol's byte stream: the frames that carry files (raw or zlib chunks, a file
resumed from an offset) and the Decoder that writes them atomically. See wire.py for the protocol."""

import hashlib
import os
import struct
import time
import zlib

from .listing import TMP_SUFFIX, shown

CHUNK = 1 << 20
# A file whose first chunk compresses to more than this share is sent raw (images, weights, archives).
COMPRESS_WORTH = 0.9
_FILE = struct.Struct("!cIQ")
_RESUME = struct.Struct("!cIQQ")  # a file continued from an offset: index, size, offset
_DATA = struct.Struct("!cI")


class ProtocolError(Exception):
    """The byte stream does not follow the protocol (a bug or a corrupted connection)."""


def safe_join(root, rel):
    """`root/rel`, refusing paths that would leave `root` (absolute, '..')."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ProtocolError("unsafe path in transfer: %r" % rel)
    return os.path.join(root, *parts)


def file_hash(path, limit):
    """sha256 of the first `limit` bytes of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = limit
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h


def frames(root, entries, need, resume=None):
    """The frames that carry files `need` of `entries` from `root` (reads the files lazily); a file
    in `resume` ({i: (offset, sha256 hex)}) whose first bytes still match goes from its offset."""
    resume = resume or {}
    for i in need:
        e = entries[i]
        path = os.path.join(root, *e.path.split("/"))
        sent = 0
        if i in resume:
            offset, digest = resume[i]
            try:
                same = file_hash(path, offset).hexdigest() == digest
            except OSError:
                same = False  # gone: the open below says so as for any file
            if same:
                sent = offset
        yield _RESUME.pack(b"R", i, e.size, sent) if sent else _FILE.pack(b"F", i, e.size)
        compress = e.size - sent >= 256
        with open(path, "rb") as f:
            f.seek(sent)
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
    """Consumes frames, writes each file to a temporary name and renames it once complete. `resume`
    is what `partials` found; the index is saved now and then, so a transfer killed outright loses
    little of what it knew."""

    SAVE_EVERY_S = 2.0

    def __init__(self, root, entries, index, on_bytes=None, resume=None):
        self.root, self.entries, self.index = root, entries, index
        self.on_bytes = on_bytes
        self.resume = resume or {}
        self._saved_at = time.monotonic()
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
                self._open(i, size, 0)
            elif kind == b"R":
                if end - pos < _RESUME.size:
                    break
                _, i, size, offset = _RESUME.unpack_from(data, pos)
                pos += _RESUME.size
                self._open(i, size, offset)
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
        return {b"F": _FILE.size, b"R": _RESUME.size}.get(kind, 1)

    def _open(self, i, size, offset):
        if self._cur is not None or i >= len(self.entries) or self.entries[i].size != size:
            raise ProtocolError("unexpected file frame %d" % i)
        if offset and (i not in self.resume or self.resume[i][0] != offset):
            raise ProtocolError("file %d resumed from an offset it was not offered" % i)
        e = self.entries[i]
        target = safe_join(self.root, e.path)
        parent = os.path.dirname(target)
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        tmp = target + TMP_SUFFIX
        if offset:
            fd = os.open(tmp, os.O_WRONLY)
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            h = self.resume[i][1]  # the prefix's hash, read by `partials`
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            h = hashlib.sha256()
        self._cur = [e, fd, h, tmp, offset]

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
            raise ProtocolError("%s changed while it was sent (%d of %d bytes); send it again" % (shown(e.path), written, e.size))
        os.fchmod(fd, e.mode | 0o600)  # the exact mode, whatever the umask
        os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        os.close(fd)
        os.replace(tmp, safe_join(self.root, e.path))
        self.index.put(e.path, e.size, e.mtime_ns, fresh=True, sha256=h.hexdigest())
        self.files += 1
        if self.index.path and time.monotonic() - self._saved_at > self.SAVE_EVERY_S:
            self.index.save()
            self._saved_at = time.monotonic()
