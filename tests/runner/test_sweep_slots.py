"""A sweep's slot machines across a sweep process killed hard (kill -9) while it made them: the
slot's record names its sweep from the start, so `--resume` finds it, destroys a half-made one and
makes it again, and nothing is left behind."""

from __future__ import annotations

import json
import time

from tests.conftest import ROOT

EXAMPLE = str(ROOT / "examples" / "sweep")


def test_a_sweep_killed_while_making_its_machines_resumes_and_leaves_nothing(trainrig, popen_trainrig, state_home,
                                                                               tmp_path):
    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "mid-up", "--param", "lr=0.01,0.1", "--trials", "2",
                       "--parallel", "2", "--objective", "val_loss:min", "--outputs", str(tmp_path / "out"))
    slot = state_home / "runs" / "sweep-mid-up-s1" / "record.json"
    end = time.monotonic() + 60
    while not slot.exists():  # being made (provisioning), perhaps up already
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.01)
    p.kill()
    p.wait()
    assert json.loads(slot.read_text())["sweep"] == "sweep-mid-up"

    done = trainrig("sweep", "--resume", "sweep-mid-up", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["complete"] == 2
    for k in (1, 2):
        rec = state_home / "runs" / f"sweep-mid-up-s{k}" / "record.json"
        assert json.loads(rec.read_text())["state"] == "destroyed"


def test_a_second_process_on_a_running_sweep_is_refused_in_one_sentence(trainrig, popen_trainrig, state_home, tmp_path):
    import signal

    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "busy2", "--param", "lr=0.01,0.1", "--trials", "1",
                       "--objective", "val_loss:min", "--env", "STEP_S=2", "--outputs", str(tmp_path / "out"))
    end = time.monotonic() + 60
    while not (state_home / "sweeps" / "sweep-busy2" / "pid").exists():
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.01)
    for args in (("--resume", "sweep-busy2"),
                 (EXAMPLE, "--dataset-name", "busy2", "--name", "busy2-other", "--param", "lr=1,2", "--objective", "l:min")):
        done = trainrig("sweep", *args)
        assert done.code == 2 and len(done.err.strip().splitlines()) == 1, done.err
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 130


def test_a_slot_is_never_started_itself_and_its_log_is_its_trials(trainrig, popen_trainrig, state_home, tmp_path):
    """`start SLOT` would train the sweep's code with no parameters beside a trial on its machine."""
    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "lent", "--param", "lr=0.01,0.1", "--trials", "1",
                       "--objective", "val_loss:min", "--env", "STEP_S=0.5", "--outputs", str(tmp_path / "out"))
    status = state_home / "runs" / "sweep-lent-s1" / "sandbox" / "runs" / "sweep-lent-t0" / "status.json"
    end = time.monotonic() + 60
    while not (status.exists() and '"training"' in status.read_text()):
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.05)
    for verb in ("start", "logs"):
        done = trainrig(verb, "sweep-lent-s1")
        assert done.code == 2 and len(done.err.strip().splitlines()) == 1, done.err
    assert not (state_home / "runs" / "sweep-lent-s1" / "sandbox" / "runs" / "sweep-lent-s1").exists()
    assert p.wait(timeout=60) == 0


SEEN = """
    import argparse, json, os
    import trainrig_helpers as th
    ap = th.add_directory_arguments(argparse.ArgumentParser())
    ap.add_argument("--lr", type=float)
    a = ap.parse_args()
    d = th.directories(a)
    th.MetricsWriter(d.logs, tensorboard=False).log(0, val_loss=a.lr)
    json.dump({"where": os.path.realpath(d.dataset), "files": sorted(os.listdir(d.dataset))},
              open(os.path.join(d.output, "seen.json"), "w"))
"""


def test_trials_on_one_machine_share_its_copy_of_a_bucket_dataset(bucket_servers, env, trainrig, tmp_path):
    """The dataset is pulled from its bucket into the slot's folder once (then only what changed),
    not again into every trial's folder; each trial reads all of it."""
    from runner.remote.location import parse_location
    from runner.remote.stores import open_store
    from runner.remote.sync import push
    from tests.conftest import make_bucket, make_code

    env.update(bucket_servers)
    src = tmp_path / "data"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.bin").write_bytes(bytes(1000))
    uri = f"s3://{make_bucket('s3')}/data"
    push(str(src), open_store(parse_location(uri)), None)
    out = tmp_path / "out"
    done = trainrig("sweep", str(make_code(tmp_path / "code", SEEN)), "--dataset", uri, "--dataset-name", "pulled",
                    "--param", "lr=0.1..0.9", "--trials", "2", "--no-prune", "--objective", "val_loss:min",
                    "--outputs", str(out))
    assert done.code == 0, done.err
    seen = [json.loads(f.read_text()) for f in sorted(out.glob("*/outputs/seen.json"))]
    assert len(seen) == 2 and all(s["files"] == ["f0.bin", "f1.bin", "f2.bin"] for s in seen)
    assert seen[0]["where"] == seen[1]["where"] and "/runs/code-pulled-s1/dataset" in seen[0]["where"]


def test_a_code_folder_gone_is_bad_input_before_any_machine_or_training(trainrig, state_home, tmp_path):
    """It used to upload nothing (the folder scanned empty) and fail each trial (or `start`) in the training."""
    import shutil

    from tests.conftest import make_code

    code = make_code(tmp_path / "moved", SEEN)
    assert trainrig("sweep", str(code), "--dataset-name", "none", "--param", "lr=0.1,0.2", "--trials", "1",
                    "--objective", "val_loss:min", "--outputs", str(tmp_path / "out")).code == 0
    assert trainrig("up", str(code), "--dataset-name", "solo").code == 0
    shutil.rmtree(code)
    done = trainrig("sweep", "--resume", "moved-none", "--trials", "2")
    assert done.code == 2 and len(done.err.strip().splitlines()) == 1, done.err
    assert json.loads((state_home / "runs" / "moved-none-s1" / "record.json").read_text())["state"] == "destroyed"
    assert not (state_home / "runs" / "moved-none-t1").exists()
    try:
        assert trainrig("start", "moved-solo").code == 2
        assert json.loads((state_home / "runs" / "moved-solo" / "record.json").read_text())["state"] == "up"
    finally:
        assert trainrig("down", "moved-solo", "-y").code == 0


def test_ctrl_c_twice_does_not_cut_the_clean_up_short(trainrig, popen_trainrig, state_home, tmp_path):
    """The second Ctrl-C of an impatient user used to break off the clean-up: slots and trainings left
    running, though the sweep said its machines were destroyed."""
    import signal

    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "twice", "--param", "lr=0.01,0.1", "--trials", "2",
                       "--objective", "val_loss:min", "--env", "STEP_S=0.5", "--outputs", str(tmp_path / "out"))
    status = state_home / "runs" / "sweep-twice-s1" / "sandbox" / "runs" / "sweep-twice-t0" / "status.json"
    end = time.monotonic() + 60
    while not (status.exists() and '"training"' in status.read_text()):
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    time.sleep(0.1)  # within the clean-up (stopping the trial, removing it, destroying the slot)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    for rid in ("sweep-twice-s1", "sweep-twice-t0"):
        assert json.loads((state_home / "runs" / rid / "record.json").read_text())["state"] == "destroyed"


def test_a_new_sweep_never_takes_over_another_sweeps_trial_ids(trainrig, state_home, tmp_path):
    """Trial ids come from the code and dataset names, not --name: a second sweep over them (after the
    first ended) used to overwrite the first one's trial records."""
    args = ("--dataset-name", "taken", "--param", "lr=0.01,0.1", "--trials", "1", "--objective", "val_loss:min",
            "--outputs", str(tmp_path / "out"))
    assert trainrig("sweep", EXAMPLE, *args).code == 0
    done = trainrig("sweep", EXAMPLE, *args, "--name", "another")
    assert done.code == 2 and len(done.err.strip().splitlines()) == 1, done.err
    assert json.loads((state_home / "runs" / "sweep-taken-t0" / "record.json").read_text())["sweep"] == "sweep-taken"
    assert not (state_home / "sweeps" / "another" / "sweep.json").exists()


def test_an_outputs_folder_that_cannot_be_made_is_bad_input_before_any_machine(trainrig, state_home, tmp_path):
    """It was found out only when the outputs were due home: a run kept its machine, a sweep failed every trial."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for args in (("run", EXAMPLE, "--dataset-name", "nowhere"),
                 ("sweep", EXAMPLE, "--dataset-name", "nowhere2", "--param", "lr=0.1,0.2", "--objective", "val_loss:min")):
        done = trainrig(*args, "--outputs", str(blocked / "out"))
        assert done.code == 2, done.err
    assert not (state_home / "runs" / "sweep-nowhere").exists() and not (state_home / "runs" / "sweep-nowhere2-s1").exists()
    assert not (state_home / "sweeps" / "sweep-nowhere2").exists()
