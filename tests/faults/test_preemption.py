"""A spot run preempted for real on the `local` target: the supervisor sees the cloud's notice (a local
imitation of GCP's metadata server), passes SIGTERM to the training, which saves a last checkpoint,
makes its final sync to the output store (moto's S3), and then the machine is killed (server,
supervisor and training: kill -9). trainrig brings up a fresh sandbox, restores outputs and logs from
the store and the training resumes from its last checkpoint. Also the machine killed with no notice
at all: the run resumes from the last checkpoint that reached the store."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Callable

from runner.remote.location import parse_location
from runner.remote.stores import open_store
from tests.conftest import make_bucket, make_code, manifest, only_folder, record
from tests.faults.metadata_server import metadata_server
from tests.faults.observe import checkpointing_training, wait_for
from tests.faults.observe import gone as _gone
from tests.faults.observe import kill9 as _kill9
from tests.faults.observe import steps_in as _steps_in

STEPS = 24

TRAIN = checkpointing_training(STEPS, 0.25)


def _wait(what: str, cond: Callable[[], bool], timeout: float = 120) -> None:
    wait_for(what, cond, timeout)


def _run_dir(state_home: Path, rid: str) -> Path:
    return state_home / "runs" / rid / "sandbox" / "runs" / rid


def _status(state_home: Path, rid: str) -> dict:
    try:
        return json.loads((_run_dir(state_home, rid) / "status.json").read_text())
    except (OSError, ValueError):
        return {}










def _machine_pids(state_home: Path, rid: str) -> list[int]:
    s = _status(state_home, rid)
    return [p for p in (record(state_home, rid)["local_server_pid"], s.get("supervisor_pid"), s.get("training_pid")) if p]


def test_a_preempted_spot_run_resumes_on_a_new_machine_from_its_last_checkpoint(
        bucket_servers, env, popen_trainrig, trainrig, tmp_path, state_home):
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    code = make_code(tmp_path / "spot", TRAIN)
    rid = "spot-notice"
    with metadata_server() as md:
        env["TRAINRIG_METADATA_URL"] = f"gcp={md.gcp_url}"
        client = popen_trainrig("run", str(code), "--code-name", "spot", "--dataset-name", "notice", "--output-store",
                                f"s3://{bucket}/runs", "--max-restarts", "1", "--sync-interval", "1s",
                                "--outputs", str(tmp_path / "out"))
        _wait("step 5 in the training log",
              lambda: "step 5\n" in _read(_run_dir(state_home, rid) / "logs" / "train.log"))
        reader = popen_trainrig("logs", rid, "-f")  # a second follower: it must not restart the run again
        _wait("the reader's first lines", lambda: "step 5" in _read(_run_dir(state_home, rid) / "logs" / "train.log"))
        pids = _machine_pids(state_home, rid)
        supervisor = _status(state_home, rid)["supervisor_pid"]
        md.preempted = True  # the cloud's notice: the supervisor passes SIGTERM to the training
        _wait("the supervisor's end within GCP's 30 s grace", lambda: _gone(supervisor), timeout=30)
        md.preempted = False  # the imitation serves the next machine too: that one is not preempted
        _kill9(pids)  # then the machine goes: server, supervisor and training
        out, err = client.communicate(timeout=300)
        read, read_err = reader.communicate(timeout=60)
    assert client.returncode == 0, err
    assert reader.returncode == 0, read_err
    assert _steps_in(read) == list(range(STEPS))  # `logs -f` too: each line once across the restart
    folder = only_folder(tmp_path / "out")
    m = manifest(folder)
    assert m["outcome"] == "succeeded"
    assert [r["outcome"] for r in m["restarts"]] == ["preempted"] and m["max_restarts"] == 1
    assert m["preemption"] == ""  # the last attempt's own status: it was not preempted
    # The last checkpoint written on SIGTERM reached the store: no step is done twice.
    log = (folder / "logs" / "train.log").read_text()
    last = int(re.search(r"SIGTERM: last checkpoint (\d+)", log).group(1))
    assert f"resumed after step {last}\n" in log
    assert _steps_in(log) == list(range(STEPS)) and log.endswith("done\n")
    assert _steps_in(out) == list(range(STEPS))  # what the follower showed: each line once, none lost
    assert sorted(p.name for p in (folder / "outputs").glob("step-*.txt")) == [f"step-{i:03d}.txt" for i in range(STEPS)]
    rec = record(state_home, rid)
    assert rec["state"] == "destroyed" and len(rec["restarts"]) == 1
    assert any(r.startswith("GET /computeMetadata/v1/instance/preempted") for r in md.requests)
    ls = trainrig("ls", "--json")
    row = next(r for r in json.loads(ls.out) if r["run_id"] == rid)
    assert [r["outcome"] for r in row["restarts"]] == ["preempted"] and row["max_restarts"] == 1


def test_a_machine_killed_without_notice_resumes_from_the_last_synced_checkpoint(
        bucket_servers, env, popen_trainrig, trainrig, tmp_path, state_home):
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    code = make_code(tmp_path / "gone", TRAIN)
    rid = "gone-nonotice"
    client = popen_trainrig("run", str(code), "--code-name", "gone", "--dataset-name", "nonotice", "--output-store",
                            f"s3://{bucket}/runs", "--max-restarts", "2", "--sync-interval", "1s",
                            "--outputs", str(tmp_path / "out"))
    store = open_store(parse_location(f"s3://{bucket}/runs/{rid}/outputs"))

    def synced() -> list[int]:
        return sorted(int(o.rel[len("checkpoints/checkpoint-"):-4]) for o in store.objects() if o.rel.startswith("checkpoints/"))

    _wait("checkpoint 4 in the store", lambda: any(s >= 4 for s in synced()))
    pids = _machine_pids(state_home, rid)
    supervisor, training = pids[1], pids[2]
    _kill9([supervisor])  # nothing more reaches the store
    kept = max(synced())
    os.kill(training, signal.SIGTERM)  # the training's grace: its last checkpoint stays on the lost disk
    _wait("the training's exit", lambda: _gone(training), timeout=30)
    _kill9(pids)
    out, err = client.communicate(timeout=300)
    assert client.returncode == 0, err
    folder = only_folder(tmp_path / "out")
    m = manifest(folder)
    assert m["outcome"] == "succeeded" and [r["outcome"] for r in m["restarts"]] == ["lost"]
    log = (folder / "logs" / "train.log").read_text()
    assert f"resumed after step {kept}\n" in log
    # The downloaded log: what reached the store (with no notice, the lines after its last sync of
    # logs are gone with the machine, as in any crash), then the new attempt, going on after `kept`.
    before, after = log.split(f"resumed after step {kept}\n")
    assert _steps_in(after) == list(range(kept + 1, STEPS)) and after.endswith("done\n")
    assert _steps_in(before) == list(range(len(_steps_in(before))))
    # What the follower showed: every step; only those past the last synced checkpoint twice.
    shown = _steps_in(out)
    again = [s for s in set(shown) if shown.count(s) > 1]
    assert set(shown) == set(range(STEPS)) and all(s > kept for s in again)
    assert sorted(p.name for p in (folder / "outputs").glob("step-*.txt")) == [f"step-{i:03d}.txt" for i in range(STEPS)]
    st = trainrig("status", rid, "--json")
    assert st.code == 0 and [r["outcome"] for r in json.loads(st.out)["run"]["restarts"]] == ["lost"]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_a_machine_lost_while_nobody_follows_is_restarted_by_the_next_follower(trainrig, bucket_servers, env, tmp_path,
                                                                               state_home):
    env.update(bucket_servers)
    bucket = make_bucket("s3")
    code = make_code(tmp_path / "alone", TRAIN)
    rid = "alone-nofollower"
    up = trainrig("up", str(code), "--code-name", "alone", "--dataset-name", "nofollower", "--output-store",
                  f"s3://{bucket}/runs", "--max-restarts", "1", "--sync-interval", "1s")
    assert up.code == 0, up.err
    assert trainrig("start", rid, "--no-follow").code == 0
    _wait("step 5 in the training log", lambda: "step 5\n" in _read(_run_dir(state_home, rid) / "logs" / "train.log"))
    _kill9(_machine_pids(state_home, rid))  # the machine goes while nobody follows
    st = trainrig("status", rid, "--json")
    report = json.loads(st.out)
    assert (report["status"]["outcome"], report["run"]["state"], report["run"]["restarts"]) == ("lost", "started", [])
    hint = re.search(r"`(trainrig logs \S+ -f)`", trainrig("status", rid).out).group(1)
    follow = trainrig(*hint.split()[1:], timeout=300)  # the hint, as printed
    assert follow.code == 0, follow.err
    shown = _steps_in(follow.out)
    assert set(shown) == set(range(STEPS)) and follow.out.count("resumed after step") == 1
    again = trainrig("status", rid, "--json")
    assert [r["outcome"] for r in json.loads(again.out)["run"]["restarts"]] == ["lost"]
    assert trainrig("download", rid, "--outputs", str(tmp_path / "out")).code == 0
    outputs = only_folder(tmp_path / "out") / "outputs"
    assert sorted(p.name for p in outputs.glob("step-*.txt")) == [f"step-{i:03d}.txt" for i in range(STEPS)]
    assert trainrig("down", rid, "-y").code == 0
