"""Listing a folder for a transfer: its regular files, and what was left out of it and why.

Symbolic links are never followed out of the folder (a code folder holding a link to /etc/passwd
or ~/.ssh/id_rsa must not ship that file to a machine): a link to a regular file inside the folder
is sent as that file's content; a link leading outside, a link to a folder, a broken link and
anything that is no regular file (a FIFO, a socket) are left out, each with its reason, so the
caller can say so. File names are str as the OS gives them: bytes that are no valid UTF-8 are
carried as surrogates (PEP 383), and `wire_bytes` turns them back into the exact bytes.
"""

import os
import stat

TMP_SUFFIX = ".trainrig-part"
INSIDE = "inside"  # links are followed only to files inside the folder
FOLLOW = "follow"  # links to files are followed wherever they lead (the machine's own output sync)


class Entry:
    """One regular file of a folder: path relative to the folder, with '/' separators."""

    __slots__ = ("path", "size", "mtime_ns", "mode")

    def __init__(self, path, size, mtime_ns, mode):
        self.path, self.size, self.mtime_ns, self.mode = path, size, mtime_ns, mode

    def row(self):
        return [self.path, self.size, self.mtime_ns, self.mode]


def wire_bytes(name):
    """The exact bytes of a file name as listed (its undecodable bytes included)."""
    return name.encode("utf-8", "surrogateescape")


def shown(name):
    """A file name fit for a message: undecodable bytes written as \\xNN, never an encoding error."""
    return wire_bytes(name).decode("utf-8", "backslashreplace")


def scan(root, skip=None, links=FOLLOW, left_out=None):
    """Regular files under `root`, sorted; `skip(relpath, is_dir)` prunes (ignore rules: left out
    silently, the user asked for it). With links=INSIDE, links are never followed out of `root`;
    what is left out for that or for not being a regular file goes to `left_out` as (path, reason)."""
    out = []
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        return out
    real_root = os.path.realpath(root)
    note = left_out.append if left_out is not None else (lambda item: None)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        if skip is not None:
            dirnames[:] = [d for d in dirnames if not skip(rel_dir + d, True)]
        kept = []
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):  # os.walk would not enter it: say so
                note((rel_dir + d, "link to the folder %s, not followed" % shown(os.readlink(os.path.join(dirpath, d)))))
            else:
                kept.append(d)
        dirnames[:] = sorted(kept)
        for name in sorted(filenames):
            rel = rel_dir + name
            if TMP_SUFFIX in name or (skip is not None and skip(rel, False)):
                continue
            path = os.path.join(dirpath, name)
            try:
                lst = os.lstat(path)
            except OSError:
                continue  # deleted while we walk: no longer part of the folder
            st = lst
            if stat.S_ISLNK(lst.st_mode):
                why, st = _follow(path, real_root, root, skip, links)
                if why:
                    note((rel, why))
                    continue
                if st is None:
                    continue  # deleted while we walk
            if not stat.S_ISREG(st.st_mode):
                note((rel, "not a regular file"))
                continue
            out.append(Entry(rel, st.st_size, st.st_mtime_ns, st.st_mode & 0o777))
    return out


def _follow(path, real_root, root, skip, links):
    """(why the link at `path` is left out, or "", the stat of what it leads to)."""
    target = os.readlink(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken link to %s" % shown(target), None
    except OSError as e:
        return "link to %s that cannot be followed: %s" % (shown(target), e.strerror), None
    if links == FOLLOW:
        return "", st
    real = os.path.realpath(path)
    if not real.startswith(real_root + os.sep):
        return "link to %s, outside the folder" % shown(target), None
    rel_target = os.path.relpath(real, real_root).replace(os.sep, "/")
    if skip is not None and skip(rel_target, False):
        return "link to %s, which the ignore rules leave out" % shown(rel_target), None
    return "", st
