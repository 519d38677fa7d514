"""Before a cloud run writes or creates anything: the cloud's credentials, found the way Pulumi's
providers would find them (no call to the cloud), with one sentence when there are none."""

from __future__ import annotations

import pytest

from infra.errors import CloudCredentialsMissing
from runner.cloud_checks import check_credentials


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no application-default credentials
    monkeypatch.setenv("NO_GCE_CHECK", "true")  # not on a GCE machine: do not wait for its metadata server
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_google_credentials(no_credentials):
    with pytest.raises(CloudCredentialsMissing, match="gcloud auth application-default login") as e:
        check_credentials("gcp")
    assert e.value.exit_code == 2


def test_no_aws_credentials(no_credentials):
    with pytest.raises(CloudCredentialsMissing, match="aws configure"):
        check_credentials("aws")


def test_aws_credentials_in_the_shared_file_are_found(no_credentials, tmp_path):
    (tmp_path / "aws-credentials").write_text("[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n")
    check_credentials("aws")  # no exception: the same file the AWS provider reads
