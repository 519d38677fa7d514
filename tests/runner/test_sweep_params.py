"""`--param` and `--objective` parsing, and how a trial's parameters reach its training."""

import pytest

from infra.errors import BadInput
from infra.spec import EntryPoint, RunSpec
from runner.sweep.params import (
    Direction,
    ParamKind,
    parse_objective,
    parse_param,
    parse_params,
    trial_arguments,
    trial_env,
)
from runner.sweep.study import SweepConfig


def test_the_four_kinds():
    lr = parse_param("lr=log:1e-4..1e-1")
    assert (lr.kind, lr.low, lr.high, lr.env_name) == (ParamKind.LOG, 1e-4, 1e-1, "TRAINRIG_PARAM_LR")
    assert parse_param("layers=2..6").kind == ParamKind.INT
    assert parse_param("dropout=0.1..0.5").kind == ParamKind.FLOAT
    batch = parse_param("batch=32,64")
    assert (batch.kind, batch.choices) == (ParamKind.CHOICE, (32, 64))
    assert parse_param("act=relu,gelu").choices == ("relu", "gelu")
    assert lr.distribution().log and batch.distribution().choices == (32, 64)


@pytest.mark.parametrize("text", ["lr", "lr=", "1lr=1..2", "lr=log:0..1", "lr=log:1,2", "lr=2..1", "lr=a..b",
                                  "lr=1,,2", "lr=1,1", "l-r=1..2", "lr=1..inf", "lr=nan..1",
                                  "lr=log:1e-3..inf", "lr=-inf..0"])
def test_bad_params_are_bad_input(text):
    with pytest.raises(BadInput) as e:
        parse_param(text)
    assert e.value.exit_code == 2


def test_names_differing_in_case_clash_and_none_is_bad_input():
    with pytest.raises(BadInput):
        parse_params(["lr=1..2", "LR=1..2"])
    with pytest.raises(BadInput):
        parse_params([])


def test_objective():
    o = parse_objective("val_loss:min")
    assert (o.metric, o.direction, o.optuna_direction()) == ("val_loss", Direction.MIN, "minimize")
    assert parse_objective("acc:max").optuna_direction() == "maximize"
    for bad in ("val_loss", "val_loss:lowest", ":min"):
        with pytest.raises(BadInput):
            parse_objective(bad)


def test_arguments_and_environment_carry_the_same_values():
    values = {"lr": 0.0031622776601683794, "batch": 64, "act": "relu"}
    assert trial_arguments(values) == ("--lr", "0.0031622776601683794", "--batch", "64", "--act", "relu")
    assert dict(trial_env(values)) == {"TRAINRIG_PARAM_LR": "0.0031622776601683794", "TRAINRIG_PARAM_BATCH": "64",
                                       "TRAINRIG_PARAM_ACT": "relu"}


def test_the_sweep_file_round_trips():
    spec = RunSpec(code_name="toy", dataset_name="none", code_path="/x", entry=EntryPoint(module="train"))
    config = SweepConfig(name="toy-none", spec=spec, params=parse_params(["lr=log:1e-4..1e-1", "n=2..6", "b=32,64"]),
                         objective=parse_objective("val_loss:min"), trials=6, parallel=2, outputs="out", seed=3)
    assert SweepConfig.from_dict(config.to_dict()) == config
