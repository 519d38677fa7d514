"""`trainrig sweep` on the local target, for real: slot machines behind the embedded SSH server, each
trial a run of its own trained there (examples/sweep: its val_loss is known from its parameters),
Optuna's study read back from its journal file in the trainrig home."""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_code
from tests.runner.test_sweep_slots import SEEN

EXAMPLE = str(ROOT / "examples" / "sweep")
PARAMS = ("--param", "lr=log:1e-4..1e-1", "--param", "batch=32,64,128")


def study(home: Path, name: str):  # type: ignore[no-untyped-def]
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = home / "sweeps" / name / "study.journal"
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))))


def records(home: Path, sweep: str) -> dict[str, dict]:
    out = {}
    for f in (home / "runs").glob("*/record.json"):
        r = json.loads(f.read_text())
        if r.get("sweep") == sweep:
            out[r["spec"]["code_name"] + "-" + r["spec"]["dataset_name"]] = r
    return out


def val_loss(lr: float, batch: int) -> float:  # examples/sweep/train.py's, at its last step (8 steps)
    return (math.log10(lr) + 2) ** 2 + (batch - 64) ** 2 / 4096 + 1 / 8


def test_six_trials_two_at_a_time_one_pruned_the_best_downloaded(trainrig, state_home, tmp_path):
    from optuna.trial import TrialState

    out = tmp_path / "out"
    # Seed 0 draws trial 4 as the worst of the six by far: when it runs at least two trials are
    # complete (two machines, trials 0 and 1 first), so the median pruner must stop it.
    done = trainrig("sweep", EXAMPLE, "--dataset-name", "six", *PARAMS, "--trials", "6", "--parallel", "2",
                    "--objective", "val_loss:min", "--seed", "0", "--env", "STEP_S=0.1", "--outputs", str(out), "--json")
    assert done.code == 0, done.err
    result = json.loads(done.out)
    s = study(state_home, "sweep-six")
    trials = s.get_trials()
    assert len(trials) == 6 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert trials[4].state == TrialState.PRUNED
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(val_loss(t.params["lr"], t.params["batch"]))
    best = result["best"]
    assert best["number"] == s.best_trial.number and best["params"] == s.best_trial.params
    assert best["run_id"] == f"sweep-six-t{best['number']}"
    # The parameters reached the training both ways (its own check would have failed it otherwise).
    got = json.loads((Path(best["outputs"]) / "outputs" / "result.json").read_text())
    assert (got["lr"], got["batch"]) == (best["params"]["lr"], best["params"]["batch"])
    assert got["env"] == {"TRAINRIG_PARAM_LR": repr(best["params"]["lr"]), "TRAINRIG_PARAM_BATCH": str(best["params"]["batch"])}
    # The pruned trial was stopped early: fewer metric points than its 8 steps.
    pruned = next(r for r in result["ran"] if r["number"] == 4)
    points = (Path(pruned["outputs"]) / "logs" / "metrics.jsonl").read_text().splitlines()
    assert pruned["end"] == "pruned" and len(points) < 8
    assert all(0 < r["training_s"] < r["seconds"] for r in result["ran"])  # timed: the overhead benchmark reads them
    # Runs of their own on two machines made once; nothing holds a machine now.
    recs = records(state_home, "sweep-six")
    assert sorted(recs) == sorted([f"sweep-six-t{n}" for n in range(6)] + ["sweep-six-s1", "sweep-six-s2"])
    assert {r["borrowed_from"] for k, r in recs.items() if "-t" in k} == {"sweep-six-s1", "sweep-six-s2"}
    assert all(r["state"] == "destroyed" for r in recs.values())
    rows = json.loads(trainrig("ls", "--json").out)
    assert {r["run_id"] for r in rows if r.get("sweep") == "sweep-six"} == set(recs)


def test_interrupted_sweep_resumes_without_repeating_finished_trials(trainrig, popen_trainrig, state_home, tmp_path):
    from optuna.trial import TrialState

    out = tmp_path / "out"
    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "cut", *PARAMS, "--trials", "5", "--parallel", "1",
                       "--objective", "val_loss:min", "--seed", "1", "--no-prune", "--env", "STEP_S=0.1",
                       "--outputs", str(out))
    journal = state_home / "sweeps" / "sweep-cut" / "study.journal"

    def complete() -> int:
        try:
            return sum(t.state == TrialState.COMPLETE for t in study(state_home, "sweep-cut").get_trials())
        except KeyError:  # the journal file is there, the study not yet written into it
            return 0

    end = time.monotonic() + 120
    while not (journal.exists() and complete() >= 2):
        assert p.poll() is None and time.monotonic() < end, p.stderr.read() if p.poll() is not None else "timed out"
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 130
    before = {t.number: t for t in study(state_home, "sweep-cut").get_trials() if t.state == TrialState.COMPLETE}
    assert len(before) >= 2
    assert all(r["state"] == "destroyed" for r in records(state_home, "sweep-cut").values())  # nothing left billing

    done = trainrig("sweep", "--resume", "sweep-cut", "--json")
    assert done.code == 0, done.err
    ran = json.loads(done.out)["ran"]
    after = study(state_home, "sweep-cut").get_trials()
    counted = [t for t in after if t.state != TrialState.FAIL]
    assert len(counted) == 5  # --trials 5 over both processes
    for n, t in before.items():  # the finished trials stand as they were, none trained again
        assert (after[n].state, after[n].params, after[n].value) == (TrialState.COMPLETE, t.params, t.value)
    assert not {r["number"] for r in ran} & set(before)
    assert len(ran) == 5 - len(before)
    # One run per trial asked (an interrupted one included), each downloaded at most once.
    assert sorted(k for k in records(state_home, "sweep-cut") if "-t" in k) == sorted(f"sweep-cut-t{t.number}" for t in after)
    folders = [f.name for f in out.iterdir()]
    assert len(folders) == len({f.rsplit("-t", 1)[1] for f in folders}) == 5


def test_every_trial_failing_is_exit_1(trainrig, state_home, tmp_path):
    done = trainrig("sweep", EXAMPLE, "--dataset-name", "nometric", "--param", "lr=0.01,0.1", "--trials", "2",
                    "--objective", "not_logged:min", "--outputs", str(tmp_path / "out"), "--json")
    assert done.code == 1, done.err
    assert [r["end"] for r in json.loads(done.out)["ran"]] == ["failed", "failed"]
    assert all(r["state"] == "destroyed" for r in records(state_home, "sweep-nometric").values())


def test_a_sweep_interrupted_before_its_machines_are_up_resumes_as_its_hint_says(trainrig, popen_trainrig, state_home,
                                                                                   tmp_path):
    """The interrupt's hint is `trainrig sweep --resume NAME`, also when it came before the slots
    were up; a sweep refused before that (no host) leaves nothing to resume."""
    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "early", "--param", "lr=0.01,0.1", "--trials", "1",
                       "--objective", "val_loss:min", "--outputs", str(tmp_path / "out"))
    pid = state_home / "sweeps" / "sweep-early" / "pid"
    end = time.monotonic() + 60
    while not pid.exists():  # the sweep holds its lock: its study and machines are next
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 130
    assert trainrig("sweep", "--resume", "sweep-early").code == 0
    (tmp_path / "known_hosts").touch()  # the host is refused when its machine is made: not in it
    refused = trainrig("sweep", EXAMPLE, "--dataset-name", "nohost", "--param", "lr=0.01,0.1", "--objective",
                       "val_loss:min", "--target", "ssh", "--host", "nobody@127.0.0.1:1", "--known-hosts",
                       str(tmp_path / "known_hosts"))
    assert refused.code == 2 and not (state_home / "sweeps" / "sweep-nohost" / "sweep.json").exists()


def test_trials_on_one_machine_share_one_copy_of_the_dataset(trainrig, state_home, tmp_path):
    """A dataset folder goes to each slot once (later trials send only what changed), not again into
    every trial's folder; each trial still reads all of it."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"f{i}.bin").write_bytes(bytes(1000))
    code = make_code(tmp_path / "code", SEEN)  # each trial says where its dataset was
    out = tmp_path / "out"
    done = trainrig("sweep", str(code), "--dataset", str(data), "--dataset-name", "shared", "--param", "lr=0.1..0.9",
                    "--trials", "2", "--no-prune", "--objective", "val_loss:min", "--outputs", str(out))
    assert done.code == 0, done.err
    seen = [json.loads(f.read_text()) for f in sorted(out.glob("*/outputs/seen.json"))]
    assert len(seen) == 2 and all(s["files"] == ["f0.bin", "f1.bin", "f2.bin"] for s in seen)
    assert seen[0]["where"] == seen[1]["where"] and "/runs/code-shared-s1/dataset" in seen[0]["where"]


def test_a_sweep_whose_first_trials_all_fail_starts_no_more(trainrig, state_home, tmp_path):
    """A misspelt --objective fails every trial: after the first few the sweep stops asking (exit 1)
    instead of training all of --trials for nothing."""
    from optuna.trial import TrialState

    done = trainrig("sweep", EXAMPLE, "--dataset-name", "typo", "--param", "lr=log:1e-3..1e-1", "--trials", "50",
                    "--objective", "val_los:min", "--outputs", str(tmp_path / "out"), "--json")
    assert done.code == 1, done.err
    result = json.loads(done.out)
    assert result["gave_up"] and [r["end"] for r in result["ran"]] == ["failed"] * 3
    assert [t.state for t in study(state_home, "sweep-typo").get_trials()] == [TrialState.FAIL] * 3
    assert all(r["state"] == "destroyed" for r in records(state_home, "sweep-typo").values())


def test_a_sweep_resumed_from_another_folder_downloads_where_it_started(trainrig, state_home, tmp_path):
    """--outputs is kept as the folder it named when the sweep started, not relative to wherever
    --resume runs (the best trial's folder printed must exist)."""
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir(), other.mkdir()
    assert trainrig("sweep", EXAMPLE, "--dataset-name", "cwd", "--param", "lr=0.01,0.1", "--trials", "1",
                    "--objective", "val_loss:min", "--outputs", "out", cwd=first).code == 0
    done = trainrig("sweep", "--resume", "sweep-cwd", "--trials", "2", "--json", cwd=other)
    assert done.code == 0, done.err
    assert Path(json.loads(done.out)["best"]["outputs"]).is_dir()
    assert len(list((first / "out").iterdir())) == 2 and not (other / "out").exists()


@pytest.mark.parametrize("args", [
    ("--param", "lr=log:0..1", "--objective", "val_loss:min"),
    ("--param", "lr=1..", "--objective", "val_loss:min"),
    ("--param", "lr=0.1..1", "--objective", "val_loss"),
    ("--objective", "val_loss:min"),
    ("--param", "lr=0.1..1", "--objective", "val_loss:min", "--trials", "0"),
    ("--param", "lr=0.1..1", "--objective", "val_loss:min", "--env", "TRAINRIG_PARAM_LR=1"),
])
def test_bad_input_is_exit_2_and_starts_nothing(trainrig, state_home, args):
    done = trainrig("sweep", EXAMPLE, "--dataset-name", "bad", *args)
    assert done.code == 2, done.err
    assert len(done.err.strip().splitlines()) == 1
    assert not (state_home / "sweeps" / "sweep-bad").exists() and not records(state_home, "sweep-bad")


def test_resume_of_an_unknown_sweep_or_with_new_settings_is_exit_2(trainrig):
    assert trainrig("sweep", "--resume", "no-such-sweep").code == 2
    assert trainrig("sweep", EXAMPLE, "--resume", "no-such-sweep").code == 2
    assert trainrig("sweep", "--resume", "no-such-sweep", "--target", "ssh").code == 2


def test_a_sweep_killed_hard_mid_trial_resumes_on_its_machine_and_leaves_nothing(trainrig, popen_trainrig, state_home, tmp_path):
    """kill -9: no clean-up at all. --resume reuses the slot machine, stops the trial left training
    there, asks its parameters again, and at the end nothing runs and nothing holds a machine."""
    from optuna.trial import TrialState

    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "hard", *PARAMS, "--trials", "3", "--parallel", "1",
                       "--objective", "val_loss:min", "--seed", "2", "--no-prune", "--env", "STEP_S=0.2",
                       "--outputs", str(tmp_path / "out"))
    status = state_home / "runs" / "sweep-hard-s1" / "sandbox" / "runs" / "sweep-hard-t1" / "status.json"
    end = time.monotonic() + 120
    while not (status.exists() and '"training"' in status.read_text()):  # trial 1 trains on the slot
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.05)
    p.kill()
    p.wait()
    assert records(state_home, "sweep-hard")["sweep-hard-t1"]["state"] == "started"

    done = trainrig("sweep", "--resume", "sweep-hard", "--json")
    assert done.code == 0, done.err
    trials = study(state_home, "sweep-hard").get_trials()
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["interrupted"]
    assert trials[2].params == trials[1].params  # asked again first (enqueued: the next number)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    recs = records(state_home, "sweep-hard")
    assert "sweep-hard-s2" not in recs and all(r["state"] == "destroyed" for r in recs.values())


def test_down_of_a_running_sweeps_machine_or_trial_is_refused_and_changes_nothing(trainrig, popen_trainrig, state_home,
                                                                                  tmp_path):
    """The sweep would lend a destroyed machine to its next trials (each failing): `down` of its slot
    or trial while it runs is bad input, stops nothing, and names the sweep's pid to end it."""
    from optuna.trial import TrialState

    p = popen_trainrig("sweep", EXAMPLE, "--dataset-name", "busy", "--param", "lr=0.01,0.1", "--trials", "2",
                       "--parallel", "1", "--objective", "val_loss:min", "--no-prune", "--env", "STEP_S=0.5",
                       "--outputs", str(tmp_path / "out"))
    status = state_home / "runs" / "sweep-busy-s1" / "sandbox" / "runs" / "sweep-busy-t0" / "status.json"
    end = time.monotonic() + 120
    while not (status.exists() and '"training"' in status.read_text()):
        assert p.poll() is None and time.monotonic() < end
        time.sleep(0.05)
    for rid in ("sweep-busy-s1", "sweep-busy-t0"):
        done = trainrig("down", rid, "--stop", "--discard-outputs")
        assert done.code == 2, done.err
        assert f"kill {p.pid}" in done.err  # the way out, as a command
    assert records(state_home, "sweep-busy")["sweep-busy-s1"]["state"] == "up"
    assert p.wait(timeout=120) == 0
    assert [t.state for t in study(state_home, "sweep-busy").get_trials()] == [TrialState.COMPLETE] * 2  # none stopped
    assert all(r["state"] == "destroyed" for r in records(state_home, "sweep-busy").values())


def test_help_loads_no_optuna():
    import subprocess
    import sys

    probe = ("import sys\nimport tui.cli as cli\nfor argv in (['--help'], ['sweep', '--help']):\n    try:\n"
             "        cli.main(argv)\n    except SystemExit:\n        pass\n"
             "print([m for m in sys.modules if m.split('.')[0] in ('optuna', 'asyncssh')], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.strip().splitlines()[-1] == "[]", done.stderr
