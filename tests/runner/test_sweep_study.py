"""The study in the trainrig home (Optuna's journal file, real Optuna): a trial a dead sweep process
left RUNNING is told FAIL, marked interrupted, not counted, and its parameters are asked again."""

import pytest

from infra.spec import EntryPoint, RunSpec
from runner.errors import BadInput
from runner.sweep.params import parse_objective, parse_params
from runner.sweep.study import (
    INTERRUPTED,
    SweepConfig,
    held,
    journal_path,
    open_study,
    save_config,
    settle_interrupted,
    trials_used,
)


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINRIG_HOME", str(tmp_path / "home"))
    spec = RunSpec(code_name="toy", dataset_name="none", code_path=str(tmp_path), entry=EntryPoint(module="train"))
    c = SweepConfig(name="toy-none", spec=spec, params=parse_params(["lr=log:1e-4..1e-1", "batch=32,64"]),
                    objective=parse_objective("val_loss:min"), trials=4, parallel=1, outputs="out", seed=0)
    save_config(c)
    return c


def test_interrupted_trials_are_failed_and_asked_again(config):
    from optuna.trial import TrialState

    dists = {p.name: p.distribution() for p in config.params}
    study = open_study(config)
    done = study.ask(dists)
    study.tell(done, 0.5)
    left = study.ask(dists)  # this process "dies" here: the trial stays RUNNING in the journal
    assert journal_path(config.name).is_file()

    again = open_study(config)  # a new process reads the same file
    assert settle_interrupted(again) == 1
    by_number = {t.number: t for t in again.get_trials()}
    assert by_number[left.number].state == TrialState.FAIL and by_number[left.number].user_attrs[INTERRUPTED]
    assert by_number[done.number].state == TrialState.COMPLETE
    assert trials_used(again) == 1  # the interrupted one does not count against --trials
    retry = again.ask(dists)
    assert retry.params == left.params and retry.number == 2
    assert settle_interrupted(open_study(config)) == 1  # the retry, left RUNNING too


def test_one_process_per_sweep(config):
    with held(config.name, config.spec.run_id), pytest.raises(BadInput), held(config.name, config.spec.run_id):
        pass


def test_two_sweeps_over_the_same_code_and_dataset_are_refused_at_once(config):
    # Their trials would both be named <code>-<dataset>-t<N>.
    with held(config.name, config.spec.run_id), pytest.raises(BadInput), held("other-name", config.spec.run_id):
        pass
    with held(config.name, config.spec.run_id), held("other-name", "other-run"):
        pass  # another code or dataset: both go ahead


def test_ls_lists_a_sweeps_trials_in_number_order(config):
    from dataclasses import replace

    from runner.journal import RunRecord
    from runner.outcomes import grouped_by_sweep

    def run(dataset: str, sweep: str = "") -> RunRecord:
        return RunRecord(spec=replace(config.spec, dataset_name=dataset), sweep=sweep)

    runs = [run(d, "toy-none") for d in ("none-t10", "none-t2", "none-s1", "none-t1")] + [run("other")]
    assert [r.run_id for r in grouped_by_sweep(runs)] == ["toy-other", "toy-none-s1", "toy-none-t1", "toy-none-t2",
                                                         "toy-none-t10"]
