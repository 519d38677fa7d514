"""Pulumi's failures as one sentence each. The texts are the clouds' own phrasing, as Pulumi's
stderr carries them (the engine itself cannot run here)."""

from __future__ import annotations

import pytest

from infra.engine_errors import Failure, explain
from infra.errors import CloudCredentialsMissing, CloudRefused, EngineFailed, NoCapacity, StackBusy

UP = Failure("up", "yolo-beer", where="us-central1-a", elsewhere=("us-central1-a", "us-east1-c", "europe-west4-b"))


def _stderr(line: str) -> str:
    return (" code: 255\n stdout: Updating (yolo-beer):\n  +  trainrig:gcp:GpuMachine yolo-beer creating\n"
            f" stderr: error: update failed\n    {line}\n")


@pytest.mark.parametrize("line, kind, says", [
    ("gcp:compute:Instance (yolo-beer): error: googleapi: Error 503: The zone 'projects/p/zones/us-central1-a' does not "
     "have enough resources available to fulfill the request. '(resource type:compute)'., ZONE_RESOURCE_POOL_EXHAUSTED",
     NoCapacity, ["us-central1-a has no capacity", "us-east1-c", "europe-west4-b"]),
    ("error: creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have sufficient g5.xlarge capacity",
     NoCapacity, ["no capacity", "another place"]),
    ("googleapi: Error 403: Quota 'NVIDIA_T4_GPUS' exceeded.  Limit: 0.0 in region us-central1., quotaExceeded",
     CloudRefused, ["quota", "NVIDIA_T4_GPUS", "IAM & Admin > Quotas"]),
    ("api error VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU limit of 0",
     CloudRefused, ["quota", "Service Quotas"]),
    ("creating EC2 VPC: operation error EC2: CreateVpc, api error VpcLimitExceeded: The maximum number of VPCs has been reached.",
     CloudRefused, ["quota", "VpcLimitExceeded", "Service Quotas"]),
    ("google: could not find default credentials. See https://cloud.google.com/docs/authentication",
     CloudCredentialsMissing, ["gcloud auth application-default login"]),
    ("error configuring Terraform AWS Provider: no valid credential sources for Terraform AWS Provider found.",
     CloudCredentialsMissing, ["aws configure"]),
    ("googleapi: Error 403: Compute Engine API has not been used in project 123 before or it is disabled.",
     CloudRefused, ["gcloud services enable compute.googleapis.com"]),
    ("error: constructing secrets manager of type \"passphrase\": incorrect passphrase",
     EngineFailed, ["PULUMI_CONFIG_PASSPHRASE"]),
])
def test_known_failures_get_their_sentence(line, kind, says):
    error = explain(UP, _stderr(line))
    assert type(error) is kind
    for words in says:
        assert words in str(error)
    assert "\n" not in str(error)


def test_an_unknown_failure_quotes_pulumi_error_lines():
    error = explain(UP, _stderr("error: gcp:compute:Instance resource 'x' has a problem: machine type n9-huge unknown"))
    assert isinstance(error, EngineFailed)
    assert "pulumi up of run yolo-beer failed" in str(error)
    assert "n9-huge unknown" in str(error)


def test_a_concurrent_update_is_named_as_such():
    error = explain(Failure("up", "yolo-beer"), "error: the stack is currently locked by 1 lock(s)", busy=True)
    assert isinstance(error, StackBusy)
    assert "pulumi cancel -s yolo-beer" in str(error)


def test_no_alternatives_no_parenthesis():
    error = explain(Failure("up", "r-d", where="eu-west-1"), _stderr("InsufficientInstanceCapacity"))
    assert "eu-west-1 has no capacity" in str(error)
    assert "the catalog knows" not in str(error)
