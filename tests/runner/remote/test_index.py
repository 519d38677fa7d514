"""One file index for both ways a folder arrives (the transfer protocol, a sync from a store): the
same files give the same tree hash (run.json's, the dataset's), wherever they came from."""

import json
import os

import pytest

from runner.remote import wire
from runner.remote.location import parse_location
from runner.remote.stores import open_store
from runner.remote.sync import pull, push


def make_files(root):
    os.makedirs(os.path.join(root, "sub dir", "ünï"))
    with open(os.path.join(root, "model.bin"), "wb") as f:
        f.write(os.urandom(300_000))
    with open(os.path.join(root, "sub dir", "ünï", "a.txt"), "w") as f:
        f.write("a")
    open(os.path.join(root, "empty"), "w").close()


def over_the_wire(src, dst):
    """As a download from the machine (runner/transfer.py) receives a folder."""
    entries = wire.decode_offer(wire.encode_offer(wire.scan(src)))
    index = wire.FileIndex(dst + ".index.json")
    need, _ = wire.plan(dst, entries, index, True)
    dec = wire.Decoder(dst, entries, index)
    dec.feed(b"".join(wire.frames(src, entries, need)))
    assert dec.done
    index.save()
    return index.tree_hash([e.path for e in entries])


def from_the_store(store_dir, dst, tmp_path):
    """As a download from the bucket (runner/buckets.py) or the machine's dataset pull receives one."""
    return pull(open_store(parse_location(store_dir)), dst, str(tmp_path / "pull-index.json"), tree_hash=True).tree_hash


@pytest.mark.parametrize("again", [False, True], ids=["into an empty folder", "into a folder that has them"])
def test_the_same_files_have_the_same_tree_hash_over_the_wire_and_from_a_store(tmp_path, again):
    src, store = str(tmp_path / "src"), str(tmp_path / "store")
    make_files(src)
    push(src, open_store(parse_location(store)))
    wired, pulled = str(tmp_path / "wired"), str(tmp_path / "pulled")
    if again:  # a second download into the same folder: nothing is fetched, the hash is the same
        over_the_wire(src, wired)
        from_the_store(store, pulled, tmp_path)
    assert over_the_wire(src, wired) == from_the_store(store, pulled, tmp_path)


def test_an_index_an_older_trainrig_left_beside_a_folder_still_counts(tmp_path):
    """[size, mtime_ns, sha256] rows (the old transfer index, e.g. of a download cut off before an
    upgrade) are read as they are: the files they name are not sent again."""
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    make_files(src)
    expected = over_the_wire(src, dst)
    index = wire.FileIndex(dst + ".index.json")
    old = {rel: [rec["size"], rec["mtime_ns"], rec["sha256"]] for rel, rec in index.files.items()}
    assert len(old) == 3
    old["model.bin"][2] = "0" * 64  # taken as it is: proof that the old row was read, not the file
    with open(dst + ".index.json", "w") as f:
        json.dump(old, f)
    entries = wire.scan(src)
    again = wire.FileIndex(dst + ".index.json")
    assert wire.plan(dst, entries, again, True) == ([], 0)
    assert again.files["model.bin"] == {"size": 300_000, "mtime_ns": old["model.bin"][1], "sha256": "0" * 64}
    assert again.tree_hash([e.path for e in entries]) != expected
    del again.files["model.bin"]
    wire.plan(dst, entries, again, True)  # an unknown file in place: hashed where it is
    assert again.tree_hash([e.path for e in entries]) == expected
