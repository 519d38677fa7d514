"""Bad input to `logs --metrics` and `tensorboard`: one sentence, exit code 2, nothing started."""


def test_a_port_that_is_no_port_is_refused(trainrig):
    done = trainrig("tensorboard", "digits-none", "--port", "70000")
    assert done.code == 2
    assert done.err == "error: --port 70000 is not a port: give one from 1 to 65535 (default 6006).\n"


def test_metrics_of_an_unknown_run(trainrig):
    done = trainrig("logs", "no-such-run", "--metrics")
    assert done.code == 2 and done.err.startswith("error: there is no run 'no-such-run'")
    assert done.err.count("\n") == 1
