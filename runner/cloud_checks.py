"""What a cloud run needs on this computer, checked before anything is written or created:
the Python extra and the Pulumi CLI, the cloud's credentials, and the SSH source range."""

from __future__ import annotations

from dataclasses import replace

from infra.engine import check_installed
from infra.errors import CloudCredentialsMissing
from infra.spec import RunSpec
from runner.events import EventSink, Notice
from runner.public_address import public_cidr


def check_credentials(cloud: str) -> None:
    """The credentials Pulumi's providers will look for, found the same way (no call to the cloud)."""
    if cloud == "gcp":
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            google.auth.default()
        except DefaultCredentialsError as e:
            raise CloudCredentialsMissing(
                "no Google Cloud credentials were found: run `gcloud auth application-default login` "
                "(or set GOOGLE_APPLICATION_CREDENTIALS to a key file), then try again."
            ) from e
    else:
        import boto3
        import botocore.exceptions

        try:
            found = boto3.Session().get_credentials()
        except botocore.exceptions.BotoCoreError as e:
            raise CloudCredentialsMissing(f"the AWS credentials cannot be read ({e}): fix your AWS config.") from e
        if found is None:
            raise CloudCredentialsMissing(
                "no AWS credentials were found: run `aws configure` (or `aws sso login`, or set AWS_PROFILE), then try again."
            )


def prepare(spec: RunSpec, on_event: EventSink) -> RunSpec:
    """The spec with its SSH source range decided; raises (exit 2) when the run cannot start here."""
    cloud = spec.cloud
    assert cloud is not None
    check_installed(spec.target)
    check_credentials(spec.target)
    if not cloud.ssh_from:
        cloud = replace(cloud, ssh_from=public_cidr())
        on_event(Notice(f"SSH to the machine will be allowed from {cloud.ssh_from} only (this computer's public address)"))
    elif cloud.ssh_from == "0.0.0.0/0":
        on_event(Notice("warning: SSH to the machine is open to the whole internet (--ssh-from anywhere); "
                        "only the run's key can log in, but every scanner will knock"))
    return replace(spec, cloud=cloud)
