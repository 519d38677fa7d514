"""Hostile and odd folders through the transfer protocol: symbolic links that lead out, names that
are no valid UTF-8 (generated), and transfers cut off half-way that resume. Real files, real frames;
the machine's side of a download runs as a real process."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.ignore import IgnoreRules
from runner.remote import wire
from tests.conftest import ROOT

# A file name as the OS takes it: any bytes but '/' and NUL, no '.' or '..' (Linux allows 255).
NAMES = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..") and wire.TMP_SUFFIX.encode() not in b)


def transfer(src, dst, cut_after=None):
    """Offer `src`, plan at `dst`, stream; with `cut_after`, only that many bytes of the stream
    arrive (the connection died). Returns (decoder, stream bytes that were sent)."""
    entries = wire.decode_offer(wire.encode_offer(wire.scan(os.fsdecode(src), links=wire.INSIDE)))
    os.makedirs(dst, exist_ok=True)
    index = wire.FileIndex(os.fsdecode(dst) + ".index.json")
    need, _ = wire.plan(os.fsdecode(dst), entries, index, True)
    resume = wire.partials(os.fsdecode(dst), entries, need)
    sender_view = wire.decode_resume(json.loads(json.dumps(wire.encode_resume(resume))))
    dec = wire.Decoder(os.fsdecode(dst), entries, index, resume=resume)
    stream = b"".join(wire.frames(os.fsdecode(src), entries, need, sender_view))
    if cut_after is not None:
        stream = stream[:cut_after]
    for i in range(0, len(stream), 70001):
        dec.feed(stream[i:i + 70001])
    index.save()
    index.tree_hash()  # as both sides report it
    return dec, stream


def tree(root: bytes) -> dict[bytes, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if not f.endswith(wire.TMP_SUFFIX.encode()) and not f.endswith(b".index.json"):
                out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def test_links_never_lead_out_of_the_folder_and_what_is_left_out_is_named(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("password")
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    (code / "train.py").write_text("print('hi')\n")
    (code / "pkg" / "real.py").write_text("x = 1\n")
    (code / ".gitignore").write_text("private.txt\n")
    (code / "private.txt").write_text("not for the machine")
    os.symlink(outside / "secret", code / "secret")  # absolute, outside
    os.symlink("../../outside/secret", code / "pkg" / "sneaky")  # relative, outside
    os.symlink("pkg/real.py", code / "alias.py")  # inside: sent as the file's content
    os.symlink("../private.txt", code / "pkg" / "peek")  # inside, but to an ignored file
    os.symlink(outside, code / "dirlink")
    os.symlink(code / "pkg", code / "pkglink")  # a folder inside: still not followed (loops)
    os.symlink(tmp_path / "nowhere", code / "broken")
    os.mkfifo(code / "fifo")
    left_out: list = []
    entries = wire.scan(str(code), IgnoreRules(str(code)).skip, wire.INSIDE, left_out)
    assert {e.path: e.size for e in entries} == {
        ".gitignore": 12, "alias.py": 6, "pkg/real.py": 6, "train.py": 12}
    assert sorted(p for p, _ in left_out) == ["broken", "dirlink", "fifo", "pkg/peek", "pkg/sneaky", "pkglink", "secret"]
    # The protocol carries what was left out, so the side that did not list can say it.
    carried: list = []
    wire.decode_offer(wire.encode_offer(entries, left_out), carried)
    assert carried == [tuple(x) for x in left_out]


def test_the_machine_side_of_a_download_names_what_it_left_out(tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "model.bin").write_bytes(b"weights")
    os.symlink("model.bin", out / "latest.bin")
    os.symlink("/etc/passwd", out / "passwd")
    os.symlink(tmp_path / "gone", out / "dangling")
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from runner.remote.main import main; main(sys.argv[1:])", "send", str(out)],
        input=b'{"need": []}\n', capture_output=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    left_out: list = []
    entries = wire.decode_offer(proc.stdout.split(b"\n")[0], left_out)
    assert sorted(e.path for e in entries) == ["latest.bin", "model.bin"]
    assert sorted(p for p, _ in left_out) == ["dangling", "passwd"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=1, max_size=6, unique=True), folder=NAMES, data=st.binary(max_size=600))
def test_any_file_name_crosses_byte_for_byte(tmp_path, names, folder, data):
    base = os.fsencode(tmp_path) + b"/" + os.urandom(6).hex().encode()
    src, dst = base + b"/src", base + b"/dst"
    os.makedirs(src + b"/" + folder)
    for i, name in enumerate(names):
        for parent in (src, src + b"/" + folder):
            if not os.path.isdir(parent + b"/" + name):  # `name` may equal `folder`
                with open(parent + b"/" + name, "wb") as f:
                    f.write(data + bytes([i]))
    dec, _ = transfer(src, dst)
    assert dec.done and tree(dst) == tree(src)
    again, _ = transfer(src, dst)  # the index (with those names) reads back: nothing resent
    assert again.bytes == 0


def test_a_transfer_cut_off_mid_file_sends_only_the_rest(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    rng = random.Random(7)
    for name in ("a.bin", "b.bin", "c.bin"):
        (src / name).write_bytes(rng.randbytes(3 * wire.CHUNK + 11))
    size = 3 * (3 * wire.CHUNK + 11)
    first, stream = transfer(src, dst, cut_after=int(1.6 * (3 * wire.CHUNK)))
    assert not first.done and first.files == 1
    arrived = first.bytes
    second, _ = transfer(src, dst)
    assert second.done and second.files == 2 and second.bytes == size - arrived
    assert tree(bytes(dst)) == tree(bytes(src)) and not list(dst.glob("*" + wire.TMP_SUFFIX))
    assert len({len(v) for v in tree(bytes(dst)).values()}) == 1


def test_a_source_that_changed_since_the_cut_is_sent_whole(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    rng = random.Random(8)
    (src / "ckpt.bin").write_bytes(rng.randbytes(4 * wire.CHUNK))
    first, _ = transfer(src, dst, cut_after=2 * wire.CHUNK)
    assert first.files == 0 and (dst / ("ckpt.bin" + wire.TMP_SUFFIX)).stat().st_size > 0
    (src / "ckpt.bin").write_bytes(rng.randbytes(4 * wire.CHUNK))  # same size, new bytes
    second, _ = transfer(src, dst)
    assert second.bytes == 4 * wire.CHUNK
    assert (dst / "ckpt.bin").read_bytes() == (src / "ckpt.bin").read_bytes()


def test_whole_files_of_a_transfer_killed_before_it_saved_its_index_are_kept(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for name in ("a.bin", "b.bin"):
        (src / name).write_bytes(os.urandom(wire.CHUNK))
    transfer(src, dst)
    os.unlink(str(dst) + ".index.json")  # as after kill -9: the files are there, the index is not
    again, _ = transfer(src, dst)
    assert again.bytes == 0 and sorted(again.index.files) == ["a.bin", "b.bin"]
