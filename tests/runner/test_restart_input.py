"""--max-restarts that cannot work is refused in one sentence, exit 2, before anything starts."""

from __future__ import annotations

import pytest

from tests.conftest import make_code


@pytest.mark.parametrize("extra, says", [
    (["--max-restarts", "2"], "--output-store"),  # local: the outputs must outlive the sandbox
    (["--max-restarts", "-1"], "negative"),
    (["--target", "ssh", "--host", "me@192.0.2.1", "--max-restarts", "1"], "--target local, gcp or aws"),
])
def test_max_restarts_that_cannot_work_is_bad_input(extra, says, trainrig, tmp_path, state_home):
    code = make_code(tmp_path / "rs", "print('hi')\n")
    done = trainrig("run", str(code), "--dataset-name", "restarts", "--command", "python train.py", *extra)
    assert done.code == 2, done.err
    assert says in done.err and done.err.count("\n") == 1
    assert not (state_home / "runs" / "rs-restarts").exists()
