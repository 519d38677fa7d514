"""Shared fixtures: a private trainrig state folder and helpers to run the real `trainrig` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import leftovers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def leaves_no_process():  # type: ignore[no-untyped-def]
    """Fail a test that leaves a local server, a supervisor or a training running (this session's
    only), after killing them so that the next test starts clean. Set up before the test's other
    fixtures, so it looks after their teardown (popen_trainrig's clients are gone by then)."""
    before = leftovers.running()
    yield
    left = leftovers.left_by_test(before)
    if left:
        leftovers.kill(left)
        pytest.fail("the test left processes running (killed now):\n  " + "\n  ".join(sorted(map(str, left))),
                    pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def own_ssh_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`up`, `run`, `start` and `down` add an Include line to ~/.ssh/config (runner/ssh_config.py):
    every command a test starts, whatever its environment, writes to a file of the session's instead."""
    path = tmp_path_factory.mktemp("user-ssh") / "config"
    os.environ["TRAINRIG_SSH_CONFIG"] = str(path)
    return path


@dataclass
class Done:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def state_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state folder for the session, so the venv cache is built once (runs differ by id)."""
    return tmp_path_factory.mktemp("trainrig-home")


@pytest.fixture
def env(state_home: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["TRAINRIG_HOME"] = str(state_home)
    e["PYTHONUNBUFFERED"] = "1"
    return e


@pytest.fixture
def trainrig(env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the real command line: trainrig("run", ...) -> Done."""

    def call(*args: str, timeout: float = 180, cwd: Path | None = None, input: str | None = None) -> Done:
        p = subprocess.run(
            [sys.executable, "-m", "tui.cli", *args], cwd=cwd or tmp_path, env=env, capture_output=True,
            text=True, timeout=timeout, input=input,
        )
        return Done(p.returncode, p.stdout, p.stderr)

    return call


@pytest.fixture
def popen_trainrig(env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    procs: list[subprocess.Popen] = []

    def start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *args], cwd=cwd or tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def make_code(folder: Path, train_py: str, requirements: str | None = None, **extra: str) -> Path:
    """A code folder with `train.py` (dedented) and optional other files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(train_py))
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    for name, text in extra.items():
        path = folder / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def only_folder(outputs: Path) -> Path:
    found = [p for p in outputs.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def record(state_home: Path, run_id: str) -> dict:
    return json.loads((state_home / "runs" / run_id / "record.json").read_text())


@pytest.fixture(scope="session")
def bucket_servers():  # type: ignore[no-untyped-def]
    """moto's S3 server and the GCS emulator for the whole session; their settings go into this
    process's environment (the storage clients here cache their connections) and so into every
    `trainrig` the tests start."""
    from tests.buckets import environment, gcs_emulator, moto_s3

    with moto_s3() as s3_env, gcs_emulator() as gcs_env, environment({**s3_env, **gcs_env}):
        yield {**s3_env, **gcs_env}


def make_bucket(scheme: str) -> str:
    import uuid

    name = f"trainrig-test-{uuid.uuid4().hex[:10]}"
    if scheme == "s3":
        import boto3

        boto3.client("s3").create_bucket(Bucket=name)
    else:
        from runner.remote.stores.gcs import client

        client().create_bucket(name)
    return name
