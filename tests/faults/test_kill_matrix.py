"""kill -9 of the client (`trainrig run`) and of the machine's SSH server at every phase of a run, on
the `local` target, for real. After each fault the next natural command recovers the run, and then:
no log line and no output file is lost or repeated, and no process of the run is left.

The phases are told apart by what the run leaves where a user could see it (the journal, the
machine's status file, the files arriving); each kill waits for its phase and fails the test if the
phase was never seen, so a kill never silently lands elsewhere."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from runner.journal import Journal
from runner.remote.status import read_status
from tests.conftest import make_code
from tests.faults.observe import tree_bytes

LINES = 12
BIG = 24 << 20  # one incompressible file: gives uploads, the final sync and the download some length

TRAIN = """
import os, sys, time
out = os.environ["TRAINRIG_OUTPUT_DIR"]
for i in range(LINES):
    print(f"line {i}", flush=True)
    with open(os.path.join(out, f"ckpt-{i}.txt"), "w") as f:
        f.write(str(i) * 1000)
    time.sleep(PAUSE)
for j in range(BIG_OUTPUTS):
    with open(os.path.join(out, f"big-{j}.bin"), "wb") as f:
        f.write(open("seed.bin", "rb").read())
if MANY:
    os.makedirs(os.path.join(out, "many"))
for k in range(MANY):
    with open(os.path.join(out, "many", f"{k}.txt"), "w") as f:
        f.write(str(k))
print("done", flush=True)
"""


@dataclass(frozen=True)
class Case:
    phase: str
    pause: float = 0.02  # between training lines
    big_code: bool = False
    big_dataset: bool = False
    big_outputs: int = 0
    many: int = 0  # small output files: they give `down` (removing them all) some length
    install_s: float = 0.0


CASES = {
    "provisioning": Case("provisioning"),
    "code upload": Case("code upload", big_code=True),
    "dataset upload": Case("dataset upload", big_dataset=True),
    "install": Case("install", install_s=1.5),
    "training": Case("training", pause=0.15),
    "final sync": Case("final sync", big_outputs=6),
    "download": Case("download", big_outputs=6),
    "down": Case("down", many=4000),
}


def _expected_log() -> str:
    return "".join(f"line {i}\n" for i in range(LINES)) + "done\n"


def _make(tmp: Path, name: str, case: Case) -> tuple[Path, Path]:
    train = TRAIN.replace("LINES", str(LINES)).replace("PAUSE", str(case.pause)).replace("BIG_OUTPUTS", str(case.big_outputs)).replace("MANY", str(case.many))
    extra = {"install.sh": f"echo installing; sleep {case.install_s}; echo installed\n"} if case.install_s else {}
    code = make_code(tmp / name, train, **extra)
    (code / "seed.bin").write_bytes(os.urandom(BIG if case.big_outputs else 1024))
    if case.big_code:
        (code / "weights.bin").write_bytes(os.urandom(3 * BIG))
    data = tmp / f"{name}-dataset"
    data.mkdir()
    (data / "labels.csv").write_text("a,b\n1,2\n")
    if case.big_dataset:
        (data / "images.bin").write_bytes(os.urandom(3 * BIG))
    return code, data


def _wait(what: str, until: Callable[[], bool], client: subprocess.Popen, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while not until():
        if client.poll() is not None:
            out, err = client.communicate()
            pytest.fail(f"the client ended (exit {client.returncode}) before {what}: {err[-1500:]}")
        if time.monotonic() > end:
            pytest.fail(f"never saw {what}")
        time.sleep(0.002)


class Run:
    """One run of the matrix and what can be seen of it."""

    def __init__(self, state_home: Path, rid: str, outputs: Path):
        self.journal, self.rid, self.outputs = Journal(state_home), rid, outputs
        self.sandbox = state_home / "runs" / rid / "sandbox"
        self.run_dir = self.sandbox / "runs" / rid

    def state(self) -> str | None:
        try:
            return self.journal.load(self.rid).state
        except Exception:  # noqa: BLE001 - not there yet, or being written: not this phase yet
            return None

    def server_pid(self) -> int | None:
        try:
            return self.journal.load(self.rid).local_server_pid
        except Exception:  # noqa: BLE001
            return None

    def machine_phase(self) -> str | None:
        try:
            return read_status(str(self.run_dir / "status.json")).phase
        except Exception:  # noqa: BLE001
            return None

    def sees(self, phase: str) -> Callable[[], bool]:
        """A test for the moment the run is in the middle of `phase`."""
        if phase == "provisioning":
            return lambda: self.state() == "provisioning" and bool(self.server_pid())
        if phase == "code upload":
            return lambda: tree_bytes(self.run_dir / "code") > BIG // 2
        if phase == "dataset upload":
            return lambda: tree_bytes(self.run_dir / "dataset") > BIG // 2
        if phase == "install":
            return lambda: self.machine_phase() == "installing" and (self.run_dir / "logs" / "install.log").exists() \
                and b"installing" in (self.run_dir / "logs" / "install.log").read_bytes()
        if phase == "training":
            return lambda: self.machine_phase() == "training" and b"line 3" in _read(self.run_dir / "logs" / "train.log")
        if phase == "final sync":
            return lambda: self.machine_phase() == "syncing" and b"done" in _read(self.run_dir / "logs" / "train.log")
        if phase == "download":
            return lambda: tree_bytes(self.outputs) > BIG
        if phase == "down":
            return lambda: self.state() == "destroying"
        raise AssertionError(phase)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _hint(err: str) -> list[str]:
    """The command of the one error line (`trainrig ...` in backquotes, the last one)."""
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    commands = re.findall(r"`(trainrig [^`]+)`", lines[0])
    assert commands, lines[0]
    return commands[-1].split()[1:]


@pytest.mark.parametrize("victim", ["client", "server"])
@pytest.mark.parametrize("phase", list(CASES))
def test_kill_at_every_phase_loses_nothing(phase, victim, trainrig, popen_trainrig, tmp_path, state_home):
    case = CASES[phase]
    name = "k" + re.sub(r"[^a-z]", "", phase)[:8] + victim[0]
    rid = f"{name}-data"
    code, data = _make(tmp_path, name, case)
    run = Run(state_home, rid, tmp_path / "out")
    client = popen_trainrig("run", str(code), "--dataset", str(data), "--dataset-name", "data",
                            "--outputs", str(run.outputs))
    printed: list[str] = []
    try:
        _wait(f"the {phase} phase", run.sees(phase), client)
        if victim == "client":
            client.kill()
        else:
            pid = run.server_pid()
            assert pid
            os.kill(pid, signal.SIGKILL)
        out, err = client.communicate(timeout=180)
        printed.append(out)
        if victim == "client":
            _recover_after_client(phase, run, trainrig, printed)
        elif client.returncode != 0:
            assert client.returncode == 1, err  # a lost connection is the run's failure, never bad input
            if run.state() is None:  # the machine never came up: nothing was kept, the same command again
                again = trainrig("run", str(code), "--dataset", str(data), "--dataset-name", "data",
                                 "--outputs", str(run.outputs))
            else:
                again = trainrig(*_hint(err))  # the hint, as printed
            assert again.code == 0, again.err
            printed.append(again.out)
            if run.state() != "destroyed":
                done = trainrig("down", rid)
                assert done.code == 0, done.err
        _check_nothing_lost(run, printed, victim, phase)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        trainrig("down", rid, "--stop", "--discard-outputs")


def _recover_after_client(phase: str, run: Run, trainrig, printed: list[str]) -> None:  # type: ignore[no-untyped-def]
    """What a user does after their `trainrig run` was killed in `phase`."""
    rid = run.rid
    if phase == "provisioning":
        assert trainrig("down", rid).code == 0
        again = trainrig("run", rid, "--outputs", str(run.outputs))
        assert again.code == 0, again.err
        printed.append(again.out)
        return
    if phase in ("code upload", "dataset upload"):
        started = trainrig("start", rid)
        assert started.code == 0, started.err
        printed.append(started.out)
    elif phase in ("install", "training", "final sync"):
        followed = trainrig("logs", rid, "-f")
        assert followed.code == 0, followed.err
        printed.append(followed.out)
    if phase != "down":
        got = trainrig("download", rid, "--outputs", str(run.outputs))
        assert got.code == 0, got.err
    done = trainrig("down", rid)
    assert done.code == 0, done.err


def _check_nothing_lost(run: Run, printed: list[str], victim: str, phase: str) -> None:
    assert run.state() == "destroyed"
    folders = [p for p in run.outputs.iterdir() if p.is_dir()] if run.outputs.exists() else []
    assert len(folders) == 1, folders  # one folder: a resumed download never starts a second
    folder = folders[0]
    assert (folder / "logs" / "train.log").read_text() == _expected_log()  # no line lost or repeated
    got = sorted(p.name for p in (folder / "outputs").iterdir())
    case = CASES[phase]
    assert got == sorted([f"ckpt-{i}.txt" for i in range(LINES)] + [f"big-{j}.bin" for j in range(case.big_outputs)]
                         + (["many"] if case.many else []))
    if case.many:
        assert len(os.listdir(folder / "outputs" / "many")) == case.many
    assert all((folder / "outputs" / f"ckpt-{i}.txt").read_text() == str(i) * 1000 for i in range(LINES))
    for j in range(case.big_outputs):
        assert (folder / "outputs" / f"big-{j}.bin").stat().st_size == BIG
    # What the person saw: the last follower shows the whole log once; a follower that reconnected
    # after the server died shows it once too.
    assert printed[-1] in (_expected_log(), "")
    if victim == "server":
        assert "".join(printed) == _expected_log() or printed[-1] == _expected_log()
