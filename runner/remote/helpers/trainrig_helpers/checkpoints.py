"""Checkpoints in the output folder: checkpoint-<step>.<suffix>, written whole or not at all, the
latest found again to resume from.

The file is written under a hidden temporary name and renamed into place, so a crash or a sync in
the middle of a save never leaves a half checkpoint that looks like the latest one.
"""

import os
import re
from dataclasses import dataclass

from .directories import directories


@dataclass(frozen=True)
class Checkpoint:
    path: str
    step: int


def _folder(directory):
    return directory or os.path.join(directories().output, "checkpoints")


def _pattern(name, suffix):
    return re.compile(r"^%s-(\d+)%s$" % (re.escape(name), re.escape(suffix)))


def save_checkpoint(step, write, suffix=".ckpt", directory=None, name="checkpoint", keep=None):
    """Save the checkpoint of `step`: `write(path)` writes the file (torch.save, np.savez, ...).

    Goes to <output>/checkpoints/ unless `directory` says otherwise; with `keep=N` only the N
    newest checkpoints stay. Returns the Checkpoint written."""
    folder = _folder(directory)
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, "%s-%06d%s" % (name, int(step), suffix))
    # Same suffix, hidden name: savers that add a missing suffix (np.savez) keep this name.
    tmp = os.path.join(folder, ".partial-%d-%s-%06d%s" % (os.getpid(), name, int(step), suffix))
    try:
        write(tmp)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if keep:
        for old in all_checkpoints(folder, name, suffix)[:-keep]:
            os.unlink(old.path)
    return Checkpoint(final, int(step))


def all_checkpoints(directory=None, name="checkpoint", suffix=".ckpt"):
    """Every checkpoint in the folder, oldest step first."""
    folder = _folder(directory)
    pattern = _pattern(name, suffix)
    found = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    for entry in names:
        m = pattern.match(entry)
        if m:
            found.append(Checkpoint(os.path.join(folder, entry), int(m.group(1))))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(directory=None, name="checkpoint", suffix=".ckpt"):
    """The checkpoint with the highest step, or None."""
    found = all_checkpoints(directory, name, suffix)
    return found[-1] if found else None
