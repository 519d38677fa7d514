"""The transfer protocol end to end in one process: real files, real frames, no SSH."""

import os
import random

import pytest

from runner.remote import wire


def transfer(src, dst, mirror=True, chunked=7):
    """Offer src, plan at dst, stream frames in odd-sized pieces; returns (need, decoder)."""
    entries = wire.decode_offer(wire.encode_offer(wire.scan(str(src))))
    index = wire.FileIndex(str(dst) + ".index.json")
    os.makedirs(dst, exist_ok=True)
    need, deleted = wire.plan(str(dst), entries, index, mirror)
    dec = wire.Decoder(str(dst), entries, index)
    stream = b"".join(wire.frames(str(src), entries, need))
    for i in range(0, len(stream), chunked * 1024 + 1):
        dec.feed(stream[i:i + chunked * 1024 + 1])
    assert dec.done
    index.save()
    return need, deleted, dec


def tree(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


@pytest.fixture
def src(tmp_path):
    s = tmp_path / "src"
    (s / "sub dir").mkdir(parents=True)
    (s / "a.txt").write_text("hello\n" * 1000)
    (s / "sub dir" / "ünïcödé name.py").write_text("print('x')\n")
    (s / "empty").write_bytes(b"")
    (s / "random.bin").write_bytes(random.Random(1).randbytes(3 * wire.CHUNK + 5))
    os.chmod(s / "a.txt", 0o750)
    return s


def test_full_then_incremental(src, tmp_path):
    dst = tmp_path / "dst"
    need, _, dec = transfer(src, dst)
    assert len(need) == 4 and dec.files == 4
    assert tree(dst) == tree(src)
    assert os.stat(dst / "a.txt").st_mode & 0o777 == 0o750
    need, _, dec = transfer(src, dst)
    assert need == [] and dec.bytes == 0
    (src / "a.txt").write_text("changed\n")
    need, _, _ = transfer(src, dst)
    assert len(need) == 1 and tree(dst) == tree(src)


def test_mirror_deletes_what_it_sent_before_and_keeps_other_files(src, tmp_path):
    dst = tmp_path / "dst"
    transfer(src, dst)
    (dst / "made-on-machine.txt").write_text("keep me")
    os.unlink(src / "empty")
    _, deleted, _ = transfer(src, dst)
    assert deleted == 1 and not (dst / "empty").exists() and (dst / "made-on-machine.txt").exists()


def test_incompressible_data_goes_raw_and_text_compressed(src):
    entries = wire.scan(str(src))
    by_path = {e.path: i for i, e in enumerate(entries)}
    text = b"".join(wire.frames(str(src), entries, [by_path["a.txt"]]))
    rnd = b"".join(wire.frames(str(src), entries, [by_path["random.bin"]]))
    assert len(text) < 6000 / 4  # 6 KB of repeated lines
    assert b"Z" not in rnd[:20] and len(rnd) > 3 * wire.CHUNK


def test_unsafe_paths_are_refused(tmp_path):
    entries = [wire.Entry("../escape", 1, 0, 0o644)]
    dec = wire.Decoder(str(tmp_path), entries, wire.FileIndex(None))
    with pytest.raises(wire.ProtocolError, match="unsafe path"):
        dec.feed(wire._FILE.pack(b"F", 0, 1))


def test_a_file_that_changes_while_sent_is_not_kept(src, tmp_path):
    entries = wire.scan(str(src))
    i = [e.path for e in entries].index("a.txt")
    entries[i].size += 10  # as if it grew after the listing
    dec = wire.Decoder(str(tmp_path), entries, wire.FileIndex(None))
    with pytest.raises(wire.ProtocolError, match="changed while it was sent"):
        for frame in wire.frames(str(src), entries, [i]):
            dec.feed(frame)
    assert not (tmp_path / "a.txt").exists()


def test_interrupted_transfer_resumes_without_resending_finished_files(src, tmp_path):
    dst = tmp_path / "dst"
    entries = wire.scan(str(src))
    index = wire.FileIndex(str(dst) + ".index.json")
    os.makedirs(dst)
    need, _ = wire.plan(str(dst), entries, index, True)
    dec = wire.Decoder(str(dst), entries, index)
    frames = list(wire.frames(str(src), entries, need))
    for f in frames[: len(frames) // 2]:
        dec.feed(f)
    index.save()  # what the receiver has finished so far
    need2, _, _ = transfer(src, dst)
    assert 0 < len(need2) < len(need)
    assert tree(dst) == tree(src)


def test_every_split_of_the_stream_decodes(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    (src / "a").write_bytes(b"x" * 300)
    (src / "b").write_bytes(b"tiny")
    (src / "c").write_bytes(b"")
    entries = wire.scan(str(src))
    stream = b"".join(wire.frames(str(src), entries, range(len(entries))))
    for cut in range(1, len(stream)):
        dst = tmp_path / f"d{cut}"
        dst.mkdir()
        dec = wire.Decoder(str(dst), entries, wire.FileIndex(None))
        dec.feed(stream[:cut])
        dec.feed(stream[cut:])
        assert dec.done, cut
        assert (dst / "b").read_bytes() == b"tiny"


def test_mirror_prunes_folders_it_emptied(src, tmp_path):
    dst = tmp_path / "dst"
    transfer(src, dst)
    os.unlink(src / "sub dir" / "ünïcödé name.py")
    os.rmdir(src / "sub dir")
    (src / "sub dir").write_text("now a file")
    transfer(src, dst)
    assert (dst / "sub dir").read_text() == "now a file"
