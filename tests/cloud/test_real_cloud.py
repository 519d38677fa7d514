"""The whole lifecycle on a real cloud: rents a machine (it costs money: a T4 or an A10G for a few
minutes), trains the digits example on it, brings the outputs home and destroys the stack.

Runs only when asked: TRAINRIG_REAL_CLOUD=gcp (with GOOGLE_CLOUD_PROJECT) or =aws (with AWS_REGION),
with the cloud's credentials and the Pulumi CLI installed. Everywhere else it is skipped, saying why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from infra.engine import find_pulumi

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"
CLOUD = os.environ.get("TRAINRIG_REAL_CLOUD", "")
ACCELERATOR = {"gcp": "T4", "aws": "A10G"}

pytestmark = [pytest.mark.cloud, pytest.mark.skipif(
    CLOUD not in ACCELERATOR or find_pulumi() is None,
    reason="real-cloud test: set TRAINRIG_REAL_CLOUD=gcp or aws, with that cloud's credentials and the Pulumi CLI "
           "(none of which this machine has); it rents a GPU machine for a few minutes",
)]


def test_the_digits_example_trains_on_a_rented_gpu_and_nothing_is_left(trainrig, tmp_path, env):
    env.update({k: v for k, v in os.environ.items() if k.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_", "PULUMI_"))})
    name = f"real{os.getpid() % 10000}"
    done = trainrig("run", str(DIGITS), "--code-name", name, "--dataset-name", "digits", "--dataset",
                    str(DIGITS / "data"), "--target", CLOUD, "--accelerator", ACCELERATOR[CLOUD],
                    "--max-runtime", "40m", "--outputs", str(tmp_path / "outputs"), timeout=3600)
    assert done.code == 0, done.out[-3000:] + done.err[-3000:]
    folder = next((tmp_path / "outputs").iterdir())
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["outcome"] == "succeeded"
    assert any((folder / "outputs").iterdir())
    runs = json.loads(trainrig("ls", "--json").out)
    assert next(r for r in runs if r["run_id"] == f"{name}-digits")["state"] == "destroyed"
