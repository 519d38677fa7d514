"""A small JSON document that can still be saved when its disk is full.

It is saved atomically (temporary file, fsync, rename) to its own path, and when that fails for want
of space, into a reserved file made beforehand while there was room: two fixed-size slots, each
overwritten in place (bytes already allocated, so no space is needed) and checked by a CRC, written
alternately so a crash mid-write leaves the other slot whole. Every save carries a sequence number;
a reader takes whichever copy is the newest. Standard library only (it also runs on the machine).
"""

import errno
import json
import os
import struct
import zlib

SLOT = 64 * 1024
HEADER = struct.Struct("!8sQII")  # magic, seq, length, crc32
MAGIC = b"TRSLOT01"
FULL = (errno.ENOSPC, errno.EDQUOT)


def reserve_path(path):
    return path + ".reserve"


def is_full(error):
    return isinstance(error, OSError) and error.errno in FULL


def reserve(path, slot=SLOT):
    """Make the reserved file beside `path` (no-op if it is there). False if there is no room."""
    target = reserve_path(path)
    try:
        if os.path.getsize(target) >= 2 * slot:
            return True
    except OSError:
        pass
    tmp = "%s.%d.tmp" % (target, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(b"\0" * (2 * slot))  # real bytes, not a hole: overwriting them needs no new blocks
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return True
    except OSError:
        _unlink(tmp)
        return False


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write_atomic(path, data):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)  # a half-written temporary file would only hold on to space
        raise


def save(path, doc, seq_key, compact=None, slot=SLOT):
    """Save `doc` to `path`, or into its reserved slot on a full disk; doc[seq_key] is the caller's
    next sequence number. Returns (where: "file" or "reserve", the sequence number saved); raises
    the disk's error when neither works. `compact(doc)` is a smaller copy for a slot too small."""
    try:
        write_atomic(path, json.dumps(doc, indent=1).encode())
    except OSError as e:
        if not is_full(e):
            raise
        # Newer than anything on disk, or a reader would keep taking an older copy (a writer may
        # hold a record loaded before another process saved it).
        seq = max(doc[seq_key], _file_seq(path, seq_key) + 1, reserve_seq(path, slot) + 1)
        doc = dict(doc)
        doc[seq_key] = seq
        try:
            _write_slot(reserve_path(path), seq, doc, compact, slot)
        except (OSError, ValueError):
            raise e from None
        return "reserve", seq
    _clear_slots(path, slot)  # the file is whole and newest again: no slot may outrank it later
    return "file", doc[seq_key]


def _file_seq(path, seq_key):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read()).get(seq_key) or 0
    except (OSError, ValueError, AttributeError):
        return 0


def _clear_slots(path, slot):
    if reserve_seq(path, slot) == 0:
        return
    try:
        fd = os.open(reserve_path(path), os.O_WRONLY)
    except OSError:
        return
    try:
        for i in (0, 1):
            os.pwrite(fd, b"\0" * HEADER.size, i * slot)  # in place: needs no space
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_slot(target, seq, doc, compact, slot):
    data = json.dumps(doc, separators=(",", ":")).encode()
    if HEADER.size + len(data) > slot and compact is not None:
        data = json.dumps(compact(doc), separators=(",", ":")).encode()
    if HEADER.size + len(data) > slot:
        raise ValueError("too large for the reserved slot")
    fd = os.open(target, os.O_WRONLY)  # never O_CREAT: a reserve made now would need the space we lack
    try:
        if os.fstat(fd).st_size < 2 * slot:
            raise ValueError("the reserved file is incomplete")
        blob = HEADER.pack(MAGIC, seq, len(data), zlib.crc32(data)) + data
        os.pwrite(fd, blob, (seq % 2) * slot)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_slots(target, slot):
    """[(seq, data)] of the reserved file's valid slots."""
    out = []
    try:
        with open(target, "rb") as f:
            for i in (0, 1):
                f.seek(i * slot)
                head = f.read(HEADER.size)
                if len(head) < HEADER.size:
                    break
                magic, seq, length, crc = HEADER.unpack(head)
                if magic != MAGIC or length > slot - HEADER.size:
                    continue
                data = f.read(length)
                if len(data) == length and zlib.crc32(data) == crc:
                    out.append((seq, data))
    except OSError:
        pass
    return out


def reserve_seq(path, slot=SLOT):
    """The newest sequence number in the reserved slots (0: none); two small reads."""
    best = 0
    try:
        with open(reserve_path(path), "rb") as f:
            for i in (0, 1):
                f.seek(i * slot)
                head = f.read(HEADER.size)
                if len(head) == HEADER.size:
                    magic, seq, _, _ = HEADER.unpack(head)
                    if magic == MAGIC:
                        best = max(best, seq)
    except OSError:
        pass
    return best


def load(path, seq_key, slot=SLOT):
    """The newest of `path` and its reserved slots, as a dict. Raises FileNotFoundError when there is
    neither, ValueError when the file is damaged and no slot holds a copy."""
    candidates = []
    error = None
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        candidates.append((doc.get(seq_key) or 0, 1, doc))  # on a tie the file wins: it is whole
    except (OSError, ValueError) as e:
        error = e
    for seq, data in _read_slots(reserve_path(path), slot):
        try:
            candidates.append((seq, 0, json.loads(data)))
        except ValueError:
            continue
    if not candidates:
        raise error if error is not None else FileNotFoundError(path)
    return max(candidates, key=lambda c: (c[0], c[1]))[2]
