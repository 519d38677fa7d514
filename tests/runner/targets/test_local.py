"""The whole lifecycle on the `local` target: the real command line, the real embedded SSH server,
real subprocesses for the supervisor and the training."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from infra.spec import build_spec
from runner.events import LogChunk
from runner.journal import Journal
from runner.lifecycle import Lifecycle
from runner.remote import venv
from runner.remote.procs import alive
from tests.conftest import ROOT, make_code, manifest, only_folder, record

TICKER = """
import itertools, time
for i in itertools.count():
    print(f"tick {i}", flush=True)
    time.sleep(0.1)
"""


@pytest.fixture(scope="session", autouse=True)
def warm_venv(state_home: Path) -> None:
    """Build the cached venv for 'no requirements' once, as a machine would have it after its first run."""
    cache = state_home / "cache" / "venvs"
    cache.mkdir(parents=True, exist_ok=True)
    venv.ensure(str(cache), "", str(cache / "warm.log"))


def test_the_readme_example_trains_and_comes_home_with_its_manifest(trainrig, tmp_path, state_home):
    done = trainrig(
        "run", str(ROOT / "examples" / "digits"), "--code-name", "digits", "--dataset-name", "sklearn-digits",
        "--dataset", str(ROOT / "examples" / "digits" / "data"), "--outputs", str(tmp_path / "out"), "--env", "EPOCHS=12",
    )
    assert done.code == 0, done.err
    for phase in ("provisioning", "uploading code", "uploading dataset", "installing", "training", "syncing", "collecting", "destroying"):
        assert f"] {phase}" in done.err, phase
    assert "epoch  12/12" in done.out
    folder = only_folder(tmp_path / "out")
    assert folder.name.endswith("_digits_sklearn-digits") and folder.name[:8].isdigit()
    assert {p.name for p in (folder / "outputs").iterdir()} == {"best.npz", "checkpoints", "model.npz", "metrics.json"}
    assert sorted(p.name for p in (folder / "outputs" / "checkpoints").iterdir()) == ["checkpoint-000011.npz", "checkpoint-000012.npz"]
    assert json.loads((folder / "outputs" / "metrics.json").read_text())["best_test_accuracy"] > 0.9
    assert len((folder / "logs" / "metrics.jsonl").read_text().splitlines()) == 12
    assert "epoch  12/12" in (folder / "logs" / "train.log").read_text()
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and m["exit_code"] == 0
    assert m["spec"]["entry"]["module"] == "train" and m["spec"]["env"] == [["EPOCHS", "12"]]
    assert len(m["code_hash"]) == 64 and len(m["dataset_hash"]) == 64
    assert m["requirements"].startswith("numpy") and "numpy==" in m["frozen_requirements"]
    assert m["machine"]["cpus"] >= 1 and m["machine"]["python"]
    assert m["metrics"]["test_accuracy"]["goal"] == "max" and m["metrics"]["test_accuracy"]["best"] > 0.9
    assert m["metrics"]["loss"]["goal"] == "min" and m["metrics"]["loss"]["last_step"] == 12
    assert [p["phase"] for p in m["phases"]][:2] == ["provisioning", "uploading code"]
    assert record(state_home, "digits-sklearn-digits")["state"] == "destroyed"
    assert not (state_home / "runs" / "digits-sklearn-digits" / "sandbox").exists()
    assert not (state_home / "runs" / "digits-sklearn-digits" / "client_key").exists()


def test_a_training_that_crashes_half_way_keeps_its_partial_outputs_and_full_log(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "crash", """
        import os, sys, time
        out = os.environ["TRAINRIG_OUTPUT_DIR"]
        for i in range(1, 4):
            print(f"step {i}", flush=True)
            with open(os.path.join(out, f"ckpt-{i}.txt"), "w") as f:
                f.write(str(i))
            time.sleep(0.4)
        print("about to crash", file=sys.stderr, flush=True)
        sys.exit(3)
    """)
    done = trainrig("run", str(code), "--dataset-name", "none", "--sync-interval", "1s", "--outputs", str(tmp_path / "out"))
    assert done.code == 1, done.err
    assert "failed: the training exited with code 3" in done.err
    folder = only_folder(tmp_path / "out")
    assert sorted(p.name for p in (folder / "outputs").iterdir()) == ["ckpt-1.txt", "ckpt-2.txt", "ckpt-3.txt"]
    log = (folder / "logs" / "train.log").read_text()
    assert log == "step 1\nstep 2\nstep 3\nabout to crash\n"
    m = manifest(folder)
    assert (m["outcome"], m["exit_code"]) == ("failed", 3)
    assert record(state_home, "crash-none")["state"] == "destroyed"


def test_max_runtime_stops_the_training_and_says_why(trainrig, tmp_path):
    code = make_code(tmp_path / "forever", TICKER)
    t0 = time.monotonic()
    done = trainrig("run", str(code), "--dataset-name", "none", "--max-runtime", "3s", "--outputs", str(tmp_path / "out"))
    assert done.code == 1, done.err
    assert time.monotonic() - t0 < 60
    assert "timed_out: the max runtime of 3s was reached" in done.err
    m = manifest(only_folder(tmp_path / "out"))
    assert m["outcome"] == "timed_out" and m["exit_code"] == -15
    assert "tick 3" in (only_folder(tmp_path / "out") / "logs" / "train.log").read_text()


def test_a_follower_stopped_and_started_again_shows_every_line_once(state_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINRIG_HOME", str(state_home))
    code = make_code(tmp_path / "lines", """
        import time
        for i in range(300):
            print(f"line {i:03d}", flush=True)
            if i % 10 == 0:
                time.sleep(0.05)
    """)
    spec = build_spec(code=str(code), code_name="lines", dataset_name="none")
    life = Lifecycle(Journal(state_home))
    asyncio.run(life.up(spec))
    try:
        asyncio.run(life.start(spec.run_id, follow_log=False))
        first: list[LogChunk] = []

        class Enough(Exception):
            pass

        def stop_after_three(event):
            if isinstance(event, LogChunk):
                first.append(event)
                if len(first) == 3:
                    raise Enough

        with pytest.raises(Enough):
            asyncio.run(Lifecycle(Journal(state_home), stop_after_three).follow_logs(spec.run_id, 0))
        resume_at = first[-1].offset + len(first[-1].data)
        second: list[LogChunk] = []
        status = asyncio.run(Lifecycle(Journal(state_home), lambda e: second.append(e) if isinstance(e, LogChunk) else None)
                             .follow_logs(spec.run_id, resume_at))
        assert status.outcome == "succeeded"
        text = b"".join(c.data for c in first + second).decode()
        assert text == "".join(f"line {i:03d}\n" for i in range(300))
        assert all(c.data.endswith(b"\n") for c in first)  # whole lines only while it runs
    finally:
        asyncio.run(life.down(spec.run_id))


def test_ctrl_c_stops_following_never_the_training(trainrig, popen_trainrig, tmp_path):
    code = make_code(tmp_path / "patient", """
        import time
        for i in range(30):
            print(f"beat {i}", flush=True)
            time.sleep(0.1)
    """)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        p = popen_trainrig("start", "patient-none")
        assert p.stdout.readline().startswith("beat ")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 130
        assert "the training goes on" in err and "trainrig logs patient-none -f" in err
        again = trainrig("logs", "patient-none", "-f")
        assert again.code == 0, again.err
        assert again.out == "".join(f"beat {i}\n" for i in range(30))
    finally:
        trainrig("down", "patient-none", "--stop", "--discard-outputs")


def test_two_runs_at_once_do_not_disturb_each_other(popen_trainrig, tmp_path):
    procs = {}
    for name in ("alpha", "beta"):
        data = tmp_path / f"data-{name}"
        data.mkdir()
        (data / "name.txt").write_text(name)
        code = make_code(tmp_path / "both", """
            import os, time
            name = open(os.path.join(os.environ["TRAINRIG_DATASET_DIR"], "name.txt")).read()
            for i in range(10):
                print(f"{name} {i}", flush=True)
                time.sleep(0.1)
            open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "who.txt"), "w").write(name)
        """)
        procs[name] = popen_trainrig("run", str(code), "--dataset", str(data), "--dataset-name", name,
                                     "--outputs", str(tmp_path / "out"))
    for name, p in procs.items():
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        assert out == "".join(f"{name} {i}\n" for i in range(10))
    # By run, not by the UTC timestamp the names start with: either run may finish first.
    folders = sorted((tmp_path / "out").iterdir(), key=lambda f: f.name.split("_", 1)[1])
    assert [f.name.split("_", 1)[1] for f in folders] == ["both_alpha", "both_beta"]
    assert [(f / "outputs" / "who.txt").read_text() for f in folders] == ["alpha", "beta"]


def test_stop_keeps_the_machine_and_an_unchanged_restart_sends_nothing(trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "stopme", TICKER)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        first = trainrig("start", "stopme-none", "--no-follow")
        assert first.code == 0 and "code: sent 1 of 1 files" in first.err
        again = trainrig("start", "stopme-none", "--no-follow")
        assert again.code == 2 and "already training" in again.err
        stopped = trainrig("stop", "stopme-none")
        assert stopped.code == 0 and "stopped" in stopped.err
        status = json.loads(trainrig("status", "stopme-none", "--json").out)
        assert status["status"]["outcome"] == "stopped" and status["run"]["state"] == "finished"
        restart = trainrig("start", "stopme-none", "--no-follow")
        assert restart.code == 0 and "code: unchanged (1 files), nothing sent" in restart.err
        trainrig("stop", "stopme-none")
        listed = json.loads(trainrig("ls", "--json").out)
        assert any(r["run_id"] == "stopme-none" and r["state"] == "finished" for r in listed)
    finally:
        assert trainrig("down", "stopme-none", "--stop", "--discard-outputs").code == 0
    assert record(state_home, "stopme-none")["state"] == "destroyed"


def test_a_supervisor_that_dies_is_reported_lost_not_waited_for(trainrig, tmp_path, state_home):
    import os

    code = make_code(tmp_path / "orphan", TICKER)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        assert trainrig("start", "orphan-none", "--no-follow").code == 0
        status_file = state_home / "runs" / "orphan-none" / "sandbox" / "runs" / "orphan-none" / "status.json"
        for _ in range(100):
            status = json.loads(status_file.read_text())
            if status["training_pid"]:
                break
            time.sleep(0.05)
        os.kill(status["supervisor_pid"], signal.SIGKILL)
        t0 = time.monotonic()
        done = trainrig("logs", "orphan-none", "-f", timeout=60)
        assert done.code == 1 and "lost" in done.err and time.monotonic() - t0 < 30
        assert done.out.startswith("tick 0\n")
    finally:
        assert trainrig("down", "orphan-none", "--stop", "--discard-outputs").code == 0
    # down also ended the training the dead supervisor left behind
    assert not alive(status["training_pid"])


def test_the_local_ssh_server_comes_back_after_it_died(trainrig, tmp_path, state_home):
    import os

    code = make_code(tmp_path / "phoenix", 'print("risen", flush=True)\n')
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        assert trainrig("start", "phoenix-none").code == 0
        pid = record(state_home, "phoenix-none")["local_server_pid"]
        os.kill(pid, signal.SIGKILL)
        done = trainrig("logs", "phoenix-none")
        assert done.code == 0 and done.out == "risen\n"
        assert record(state_home, "phoenix-none")["local_server_pid"] != pid
    finally:
        assert trainrig("down", "phoenix-none", "--stop", "--discard-outputs").code == 0


def test_the_deadline_also_ends_a_hanging_install_script(trainrig, tmp_path):
    code = make_code(tmp_path / "hangs", 'print("never", flush=True)\n', **{"install.sh": "sleep 300\n"})
    t0 = time.monotonic()
    done = trainrig("run", str(code), "--dataset-name", "none", "--max-runtime", "2s", "--outputs", str(tmp_path / "out"))
    assert done.code == 1, done.err
    assert "timed_out: the max runtime of 2s was reached" in done.err
    assert time.monotonic() - t0 < 60 and "never" not in done.out
    assert manifest(only_folder(tmp_path / "out"))["outcome"] == "timed_out"


def test_processes_the_training_leaves_behind_are_ended(trainrig, tmp_path):
    import os

    marker = f"trainrig-leftover-{os.getpid()}"
    code = make_code(tmp_path / "leaves", f"""
        import subprocess
        subprocess.Popen(["sleep", "300"], env={{"MARK": "{marker}"}})
        print("started a helper and left", flush=True)
    """)
    done = trainrig("run", str(code), "--dataset-name", "none", "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    ours = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if f"MARK={marker}".encode() in open(f"/proc/{pid}/environ", "rb").read().split(b"\0") and alive(int(pid)):
                ours.append(pid)
        except OSError:
            continue
    assert ours == []


def test_following_survives_the_connection_dying_mid_run(trainrig, popen_trainrig, tmp_path, state_home):
    import os

    code = make_code(tmp_path / "flaky", """
        import time
        for i in range(40):
            print(f"row {i}", flush=True)
            time.sleep(0.1)
    """)
    assert trainrig("up", str(code), "--dataset-name", "none").code == 0
    try:
        p = popen_trainrig("start", "flaky-none")
        assert p.stdout.readline() == "row 0\n"
        os.kill(record(state_home, "flaky-none")["local_server_pid"], signal.SIGKILL)  # the connection dies
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "reconnecting, the training goes on" in err
        assert "row 0\n" + out == "".join(f"row {i}\n" for i in range(40))
    finally:
        trainrig("down", "flaky-none", "--stop", "--discard-outputs")


def test_the_download_waits_for_the_final_sync(trainrig, tmp_path):
    # The last output is written just before the training ends, and only the final sync (slow
    # for a big file) copies it: following must not end at the outcome, before that sync.
    code = make_code(tmp_path / "lastword", """
        import os
        with open(os.path.join(os.environ["TRAINRIG_OUTPUT_DIR"], "final.bin"), "wb") as f:
            f.write(os.urandom(1 << 20) * 150)
        print("saved", flush=True)
    """)
    done = trainrig("run", str(code), "--dataset-name", "none", "--sync-interval", "1h", "--outputs", str(tmp_path / "out"))
    assert done.code == 0, done.err
    assert "] finished" in done.err
    assert (only_folder(tmp_path / "out") / "outputs" / "final.bin").stat().st_size == 150 << 20
