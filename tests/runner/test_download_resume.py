"""A download cut off for real (kill -9 of `trainrig download`, or of the machine's SSH server)
resumes into its own folder: whole files are not sent again, the file that was arriving goes on
from where it stopped, and no half folder is left beside a new one."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import manifest, only_folder, record

RUN = "bigout-none"
FILE_MB = 120
WRITES_BIG_OUTPUTS = f"""
import os
out = os.environ["TRAINRIG_OUTPUT_DIR"]
for i in range(3):
    with open(os.path.join(out, "part%d.bin" % i), "wb") as f:
        f.write(os.urandom({FILE_MB} << 20))
print("saved", flush=True)
"""


@pytest.fixture
def big_run(state_home: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A finished run whose outputs are three incompressible files: a download takes a while.
    (One per test: each test must end with no process of its own, the run's server included.)"""
    env = {**os.environ, "TRAINRIG_HOME": str(state_home), "PYTHONUNBUFFERED": "1"}
    code = tmp_path_factory.mktemp("bigout-code") / "bigout"
    code.mkdir()
    (code / "train.py").write_text(WRITES_BIG_OUTPUTS)

    def trainrig(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tui.cli", *args], env=env, capture_output=True, text=True, timeout=180)

    assert trainrig("up", str(code), "--dataset-name", "none").returncode == 0
    try:
        done = trainrig("start", RUN)
        assert done.returncode == 0 and done.stdout == "saved\n", done.stderr
        store = state_home / "runs" / RUN / "sandbox" / "runs" / RUN / "store" / "outputs"
        yield env, {p.name: p for p in store.iterdir()}
    finally:
        trainrig("down", RUN, "--discard-outputs", "-y")


def start_download(env: dict[str, str], outputs: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", "download", RUN, "--outputs", str(outputs)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_mid_transfer(outputs: Path, proc: subprocess.Popen) -> None:
    """Until a file is whole and another is well on its way: then the download is mid-way."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        folders = list(outputs.glob("*")) if outputs.is_dir() else []
        if folders:
            whole = list(folders[0].glob("outputs/part?.bin"))
            parts = [p for p in folders[0].glob("outputs/part?.bin.trainrig-part") if _size(p) > (8 << 20)]
            if whole and parts:
                return
        assert proc.poll() is None, "the download ended before it could be cut off"
        time.sleep(0.002)
    raise AssertionError("the download never got mid-way")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed into place meanwhile
        return 0


def on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in (folder / "outputs").iterdir())


def assert_complete(folder: Path, sources: dict[str, Path]) -> None:
    assert sorted(p.name for p in (folder / "outputs").iterdir()) == sorted(sources)
    for name, src in sources.items():
        assert (folder / "outputs" / name).read_bytes() == src.read_bytes(), name


def test_a_download_killed_mid_way_resumes_in_its_folder_and_sends_nothing_twice(big_run, tmp_path):
    env, sources = big_run
    out = tmp_path / "out"
    p = start_download(env, out)
    wait_mid_transfer(out, p)
    p.kill()  # kill -9: no clean-up of any kind
    p.communicate()
    folder = only_folder(out)
    have = on_disk(folder)  # part0 whole, part1 in part
    assert record(Path(env["TRAINRIG_HOME"]), RUN)["download_pending"] == str(folder.absolute())
    done = subprocess.run([sys.executable, "-m", "tui.cli", "download", RUN, "--outputs", str(out)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert only_folder(out) == folder  # the same folder, none beside it
    assert_complete(folder, sources)
    outputs = manifest(folder)["outputs"]
    total = 3 * (FILE_MB << 20)
    assert outputs["bytes"] == total and outputs["bytes_sent"] == total - have  # not a byte twice
    assert record(Path(env["TRAINRIG_HOME"]), RUN)["download_pending"] == ""


def test_a_download_whose_connection_dies_says_the_command_that_resumes_it(big_run, tmp_path):
    env, sources = big_run
    out = tmp_path / "out"
    p = start_download(env, out)
    wait_mid_transfer(out, p)
    os.kill(record(Path(env["TRAINRIG_HOME"]), RUN)["local_server_pid"], signal.SIGKILL)  # the machine's SSH server
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    hint = re.search(r"`(trainrig download [^`]*)` tries again", err)
    assert hint, err
    argv = shlex.split(hint.group(1))
    assert argv[:3] == ["trainrig", "download", RUN]
    folder = only_folder(out)
    have = on_disk(folder)
    # The hint works as printed (the local target brings its SSH server back).
    done = subprocess.run([sys.executable, "-m", "tui.cli", *argv[1:]], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert only_folder(out) == folder
    assert_complete(folder, sources)
    assert manifest(folder)["outputs"]["bytes_sent"] == 3 * (FILE_MB << 20) - have


def test_a_download_cut_off_then_sent_elsewhere_leaves_no_half_folder(big_run, tmp_path):
    env, sources = big_run
    first, second = tmp_path / "first", tmp_path / "second"
    p = start_download(env, first)
    wait_mid_transfer(first, p)
    p.kill()
    p.communicate()
    done = subprocess.run([sys.executable, "-m", "tui.cli", "download", RUN, "--outputs", str(second)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert list(first.iterdir()) == []
    assert_complete(only_folder(second), sources)


def test_a_download_from_the_bucket_killed_mid_way_resumes_in_its_folder(bucket_servers, env, tmp_path, state_home):
    """A run whose outputs are in its bucket (the machine gone): the same, through the bucket."""
    from infra.spec import build_spec
    from runner.journal import Journal, RunRecord
    from runner.remote.location import parse_location
    from runner.remote.status import Status
    from runner.remote.stores import open_store
    from runner.remote.sync import push
    from tests.conftest import make_bucket

    env.update(bucket_servers)
    bucket = make_bucket("s3")
    code = tmp_path / "fromb"
    code.mkdir()
    (code / "train.py").write_text("")
    spec = build_spec(code=str(code), code_name=None, dataset_name="none", output_store=f"s3://{bucket}/runs")
    left = tmp_path / "left"
    (left / "outputs").mkdir(parents=True)
    (left / "logs").mkdir()
    for i in range(40):
        (left / "outputs" / f"shard{i:02d}.bin").write_bytes(os.urandom(2 << 20))
    (left / "logs" / "train.log").write_text("done\n")
    (left / "status.json").write_text(json.dumps(Status(run_id=spec.run_id, phase="finished", outcome="succeeded",
                                                        exit_code=0).to_dict()))
    push(str(left), open_store(parse_location(f"s3://{bucket}/runs/{spec.run_id}")), None)
    Journal(state_home).save(RunRecord(spec=spec, state="destroyed"))
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "tui.cli", "download", spec.run_id, "--outputs", str(out)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(out.iterdir()) and len(list(next(out.iterdir()).glob("outputs/shard*.bin"))) >= 5):
        assert p.poll() is None and time.monotonic() < deadline, "the download ended before it could be cut off"
        time.sleep(0.002)
    p.kill()
    p.communicate()
    folder = only_folder(out)
    have = sum(f.stat().st_size for f in (folder / "outputs").glob("shard*.bin"))
    done = subprocess.run([sys.executable, "-m", "tui.cli", "download", spec.run_id, "--outputs", str(out)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert only_folder(out) == folder
    assert sorted(p.name for p in (folder / "outputs").iterdir()) == sorted(p.name for p in (left / "outputs").iterdir())
    for f in (left / "outputs").iterdir():
        assert (folder / "outputs" / f.name).read_bytes() == f.read_bytes()
    outputs = manifest(folder)["outputs"]
    assert outputs["bytes"] == 40 * (2 << 20) and outputs["bytes_sent"] == 40 * (2 << 20) - have
