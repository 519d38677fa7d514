"""Hostile and odd code folders through the real command line on the `local` target: symbolic links
that lead out of the folder never reach the machine, and file names that are no valid UTF-8 make
the whole trip (upload, training, download) byte for byte."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.ignore import ALWAYS, RULE_FILES
from runner.remote import wire
from tests.conftest import make_code, manifest, only_folder

# The training lists what it was given (its working folder is the uploaded code) into its outputs.
LISTS_ITS_CODE = """
    import json, os
    seen = {}
    for name in os.listdir("."):
        seen[name] = {"link": os.path.islink(name), "file": os.path.isfile(name),
                      "text": open(name).read() if os.path.isfile(name) else None}
    with open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
"""

# Copies the folder `files` of its code, names as bytes, into its outputs.
COPIES_ITS_FILES = """
    import os
    out = os.fsencode(os.environ["TRAINRIG_OUTPUT_DIR"])
    for dirpath, _, names in os.walk(b"files"):
        os.makedirs(os.path.join(out, dirpath), exist_ok=True)
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f, open(os.path.join(out, dirpath, name), "wb") as g:
                g.write(f.read())
"""


def test_links_out_of_the_code_folder_never_reach_the_machine_and_are_named(trainrig, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text("PRIVATE KEY")
    code = make_code(tmp_path / "linky", LISTS_ITS_CODE, **{"helper.py": "X = 1\n"})
    os.symlink(outside / "id_rsa", code / "key")
    os.symlink("/etc/passwd", code / "passwd")
    os.symlink("helper.py", code / "alias.py")  # a file inside: travels as that file's content
    os.symlink(outside, code / "outdir")
    os.symlink(tmp_path / "nowhere", code / "dangling")
    done = trainrig("run", str(code), "--dataset-name", "none", "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    seen = json.loads((only_folder(tmp_path / "out") / "outputs" / "seen.json").read_text())
    assert sorted(seen) == ["alias.py", "helper.py", "train.py"]
    assert seen["alias.py"] == {"link": False, "file": True, "text": "X = 1\n"}
    notice = next(line for line in done.err.splitlines() if line.strip().startswith("code: sent"))
    for name in ("key", "passwd", "outdir", "dangling"):  # each left out by name, none silently
        assert f" {name} (" in notice, name
    assert "4 left out" in notice


_IGNORED = {n.rstrip("/").encode() for n in ALWAYS if "*" not in n} | {n.encode() for n in RULE_FILES}
NAMES = st.binary(min_size=1, max_size=30).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..") and b not in _IGNORED
    and not b.endswith(b".pyc") and wire.TMP_SUFFIX.encode() not in b)


@settings(max_examples=5, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=2, max_size=5, unique=True), folder=NAMES)
def test_file_names_that_are_no_utf8_make_the_whole_trip_byte_for_byte(trainrig, tmp_path, names, folder):
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    code = make_code(work / "odd", COPIES_ITS_FILES)
    files = os.fsencode(code / "files")
    sent = {}
    for i, name in enumerate(names):
        parent = files if i % 2 else os.path.join(files, folder)
        os.makedirs(parent, exist_ok=True)
        if os.path.isdir(os.path.join(parent, name)):
            continue  # `name` is `folder`
        with open(os.path.join(parent, name), "wb") as f:
            f.write(name * 3)
        sent[os.path.relpath(os.path.join(parent, name), files)] = name * 3
    sent[b"\xff\xfe latin-1 \xe9.txt"] = b"always one that is no UTF-8"
    with open(os.path.join(files, b"\xff\xfe latin-1 \xe9.txt"), "wb") as f:
        f.write(b"always one that is no UTF-8")
    done = trainrig("run", str(code), "--dataset-name", "none", "--outputs", str(work / "out"))
    assert done.code == 0, done.err
    back = os.fsencode(only_folder(work / "out") / "outputs" / "files")
    got = {}
    for dirpath, _, filenames in os.walk(back):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                got[os.path.relpath(os.path.join(dirpath, name), back)] = f.read()
    assert got == sent
    assert manifest(only_folder(work / "out"))["outputs"]["files"] == len(sent)
