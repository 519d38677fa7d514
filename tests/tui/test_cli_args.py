"""The command line's options as parsed (typed values), and bad multi-node options refused with exit 2
before anything starts."""

from __future__ import annotations

import pytest

from tests.conftest import make_code
from tests.tui.test_bad_input import one_error_line
from tui.cli_args import build_parser


def test_run_options_default_to_one_machine_started_as_given():
    for verb in ("run", "up"):
        a = build_parser().parse_args([verb, "code"])
        assert (a.nodes, a.launcher, a.outputs_from) == (1, "none", "rank0")


def test_run_options_as_given():
    a = build_parser().parse_args(["run", "code", "--nodes", "4", "--launcher", "torchrun", "--outputs-from", "all"])
    assert (a.nodes, a.launcher, a.outputs_from) == (4, "torchrun", "all")


@pytest.mark.parametrize("given,node", [([], 0), (["--node", "3"], 3), (["--node", "all"], "all")])
def test_logs_node_is_a_rank_or_all(given, node):
    assert build_parser().parse_args(["logs", "r-d", *given]).node == node


@pytest.mark.parametrize("args", [["logs", "r-d", "--node", "first"], ["logs", "r-d", "--node", "-1"],
                                  ["run", "code", "--launcher", "mpirun"], ["run", "code", "--outputs-from", "rank1"],
                                  ["up", "code", "--nodes", "two"]])
def test_malformed_node_options_are_usage_errors(args):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(args)
    assert e.value.code == 2


@pytest.mark.parametrize("extra", [["--nodes", "0"], ["--nodes", "65"],
                                   ["--nodes", "2", "--target", "ssh", "--host", "me@box"]])
def test_impossible_node_counts_start_nothing(trainrig, tmp_path, state_home, extra):
    code = make_code(tmp_path / "ok", "print('x')\n")
    done = trainrig("run", str(code), "--dataset-name", "d", *extra)
    assert done.code == 2, done.err
    one_error_line(done.err)
    assert not (state_home / "runs" / "ok-d").exists()


def test_a_known_run_refuses_node_options(trainrig, tmp_path, state_home):
    """Its record is the spec: `up RUN --nodes 2` would silently be one machine otherwise."""
    code = make_code(tmp_path / "known", "print('x')\n")
    assert trainrig("up", str(code), "--dataset-name", "d").code == 0
    try:
        done = trainrig("up", "known-d", "--nodes", "2")
        assert done.code == 2
        assert "--nodes" in one_error_line(done.err)
    finally:
        assert trainrig("down", "known-d", "-y", "--discard-outputs").code == 0
