"""Pulumi's failures, as one sentence each. The engine's stderr is matched against the phrases the
clouds use for the failures users meet most (no credentials, no capacity, no quota, an API switched
off); anything else is quoted from Pulumi's own error lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.errors import CloudCredentialsMissing, CloudRefused, EngineFailed, NoCapacity, StackBusy, TrainrigError


@dataclass(frozen=True)
class Failure:
    """What was being done, for the message."""

    action: str  # "up", "destroy", "outputs"
    run_id: str
    where: str = ""  # zone or region
    elsewhere: tuple[str, ...] = ()  # other zones/regions the catalog knows for the accelerator


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    kind: type[TrainrigError]
    sentence: str  # format fields: run, where, elsewhere, match


def _rule(pattern: str, kind: type[TrainrigError], sentence: str) -> _Rule:
    return _Rule(re.compile(pattern, re.IGNORECASE), kind, sentence)


RULES = (
    _rule(r"could not find default credentials|default credentials were not found|"
          r"unable to find default credentials|oauth2: cannot fetch token",
          CloudCredentialsMissing,
          "no Google Cloud credentials were found: run `gcloud auth application-default login` "
          "(or set GOOGLE_APPLICATION_CREDENTIALS), then try again."),
    _rule(r"no valid credential sources|NoCredentialProviders|failed to refresh cached credentials|"
          r"unable to locate credentials|InvalidClientTokenId|ExpiredToken",
          CloudCredentialsMissing,
          "no valid AWS credentials were found: run `aws configure` (or `aws sso login`, or set AWS_PROFILE), then try again."),
    _rule(r"ZONE_RESOURCE_POOL_EXHAUSTED|does not have enough resources available|"
          r"InsufficientInstanceCapacity|InsufficientCapacity|no more capacity|stockout|"
          r"is not supported in your requested Availability Zone",
          NoCapacity,
          "{where} has no capacity for this machine right now (the cloud said: {match}); try another place{elsewhere}."),
    # VpcLimitExceeded / InternetGatewayLimitExceeded: each AWS run has its own VPC (5 per region by default).
    _rule(r"QUOTA_EXCEEDED|Quota '[^']+' exceeded[^.]*|VcpuLimitExceeded|MaxSpotInstanceCountExceeded|"
          r"VpcLimitExceeded|InternetGatewayLimitExceeded|"
          r"exceeded quota|limit exceeded for resource",
          CloudRefused,
          "a quota of your account stops this machine (the cloud said: {match}); ask for more quota in the "
          "cloud console (IAM & Admin > Quotas on GCP, Service Quotas on AWS), or try another place{elsewhere}."),
    _rule(r"SERVICE_DISABLED|API has not been used in project \S+ before or it is disabled",
          CloudRefused,
          "a Google Cloud API this run needs is switched off in your project (the cloud said: {match}); enable it with "
          "`gcloud services enable compute.googleapis.com tpu.googleapis.com iam.googleapis.com storage.googleapis.com`."),
    _rule(r"AccessDenied|UnauthorizedOperation|Permission '?[\w.]+'? denied|PERMISSION_DENIED|is not authorized to perform",
          CloudRefused,
          "your cloud identity lacks a right this run needs (the cloud said: {match}); ask for it or use another account."),
    _rule(r"incorrect passphrase|passphrase must be set|failed to decrypt",
          EngineFailed,
          "Pulumi cannot open run {run}'s secrets with this passphrase: set PULUMI_CONFIG_PASSPHRASE (or "
          "PULUMI_CONFIG_PASSPHRASE_FILE) to the one the stack was made with."),
)


def _error_lines(text: str) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    picked = [ln for ln in lines if re.search(r"\berror\b", ln, re.IGNORECASE)]
    return (picked or lines)[-3:]


def explain(failure: Failure, stderr: str, stdout: str = "", busy: bool = False) -> TrainrigError:
    """The typed error for a failed engine command, with one sentence for the user."""
    if busy:
        return StackBusy(
            f"another Pulumi update of run {failure.run_id} is running: wait for it to end; if it crashed, "
            f"`pulumi cancel -s {failure.run_id}` (or `pulumi stack export | import` on a file backend) frees the stack."
        )
    text = f"{stderr}\n{stdout}"
    for rule in RULES:
        m = rule.pattern.search(text)
        if m:
            elsewhere = f" (the catalog knows it in {', '.join(failure.elsewhere[:6])})" if failure.elsewhere else ""
            return rule.kind(rule.sentence.format(run=failure.run_id, where=failure.where or "this zone",
                                                  elsewhere=elsewhere, match=m.group(0)))
    detail = " | ".join(_error_lines(stderr) or _error_lines(stdout)) or "no error text"
    return EngineFailed(f"pulumi {failure.action} of run {failure.run_id} failed: {detail}")
