"""`trainrig doctor`: what this computer has for cloud runs (the Pulumi CLI, the extras, credentials,
its clock, an ssh-agent), and where to look for leftovers. Each check is a typed record; none of
them changes anything.

A check is `failed` only when something was found wrong (a clock the cloud will refuse, credentials
that cannot be read, a cloud asked for by `--cloud` without credentials); what is simply absent (no
Pulumi CLI or no AWS credentials on a laptop that trains locally) is `missing`, with the command that
adds it, and does not fail the doctor: the `local` target needs none of it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime

from infra.engine import INSTALL_PULUMI, find_pulumi
from infra.errors import BadInput
from runner.journal import Journal
from runner.leftovers import Listing, Places, find
from runner.states import RunState

OK, MISSING, FAILED, SKIPPED = "ok", "missing", "failed", "skipped"
SKEW_FAIL_S = 120.0  # AWS refuses signed requests 5 minutes off (15 for S3); fail well before that
HTTP_TIMEOUT_S = 5.0
EXTRA_MODULES = {"gcp": ("pulumi", "pulumi_gcp", "google.cloud.compute_v1", "google.cloud.tpu_v2"),
                 "aws": ("pulumi", "pulumi_aws")}


@dataclass(frozen=True)
class Check:
    name: str  # "pulumi", "extra gcp", "credentials aws", "clock aws", "ssh-agent"
    status: str  # ok | missing | failed | skipped
    detail: str
    fix: str = ""  # a command that works as printed, when there is one

    def to_dict(self) -> dict:
        return asdict(self)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def check_pulumi() -> Check:
    found = find_pulumi()
    if found is None:
        return Check("pulumi", MISSING, "the Pulumi CLI is not installed (gcp and aws runs need it)", INSTALL_PULUMI)
    return Check("pulumi", OK, str(found))


def check_extra(cloud: str, has_credentials: bool) -> Check:
    missing = [m for m in EXTRA_MODULES[cloud] if not _installed(m)]
    if not missing:
        return Check(f"extra {cloud}", OK, "installed")
    need = f" ({cloud} credentials are here)" if has_credentials else ""
    return Check(f"extra {cloud}", MISSING, f"not installed: {', '.join(missing)}{need}", f"pip install -e '.[{cloud}]'")


def aws_credentials() -> Check:
    import boto3
    import botocore.exceptions

    try:
        found = boto3.Session().get_credentials()
    except botocore.exceptions.BotoCoreError as e:
        return Check("credentials aws", FAILED, f"the AWS credentials cannot be read ({e})", "aws configure")
    if found is None:
        return Check("credentials aws", MISSING, "no AWS credentials found", "aws configure")
    return Check("credentials aws", OK, f"found ({found.method})")


def gcp_credentials() -> Check:
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return Check("credentials gcp", OK, f"none needed: STORAGE_EMULATOR_HOST={os.environ['STORAGE_EMULATOR_HOST']}")
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        _creds, project = google.auth.default()
    except DefaultCredentialsError:
        return Check("credentials gcp", MISSING, "no Google Cloud credentials found", "gcloud auth application-default login")
    return Check("credentials gcp", OK, "application default credentials" + (f" (project {project})" if project else ""))


def clock_endpoint(cloud: str, region: str | None) -> str:
    """The cloud's own endpoint (or the emulator the environment points the SDK at)."""
    if cloud == "aws":
        return os.environ.get("AWS_ENDPOINT_URL") or f"https://sts.{region or 'us-east-1'}.amazonaws.com/"
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if host:
        return host if "://" in host else f"http://{host}"
    return "https://storage.googleapis.com/"


def check_clock(cloud: str, region: str | None = None) -> Check:
    """This computer's clock against the Date header of the cloud's endpoint (any answer carries one,
    an error too); skipped, with the reason, when the endpoint cannot be reached."""
    url = clock_endpoint(cloud, region)
    before = time.time()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=HTTP_TIMEOUT_S) as r:
            date = r.headers.get("Date")
    except urllib.error.HTTPError as e:
        date = e.headers.get("Date") if e.headers else None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return Check(f"clock {cloud}", SKIPPED, f"{url} could not be reached ({reason}): clock not compared")
    after = time.time()
    if not date:
        return Check(f"clock {cloud}", SKIPPED, f"{url} sent no Date header: clock not compared")
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return Check(f"clock {cloud}", SKIPPED, f"{url} sent a Date header that is no date ({date!r})")
    # The header has whole seconds: the server's clock read somewhere in [theirs, theirs + 1).
    skew = theirs + 0.5 - (before + after) / 2
    text = f"{abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} {url}"
    if abs(skew) > SKEW_FAIL_S:
        return Check(f"clock {cloud}", FAILED, f"this computer's clock is {text}: the cloud refuses signed requests "
                     "minutes off", "sudo timedatectl set-ntp true")
    return Check(f"clock {cloud}", OK, f"within {max(abs(skew), 1.0):.0f} s of {url}")


def check_ssh_agent() -> Check:
    """Informative: trainrig's own keys need no agent; `--target ssh` without --identity uses it."""
    sock = os.environ.get("SSH_AUTH_SOCK")
    if not sock:
        return Check("ssh-agent", MISSING, "no ssh-agent (SSH_AUTH_SOCK is not set); only `--target ssh` without "
                     "--identity uses one", 'eval "$(ssh-agent -s)" && ssh-add')
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(sock)
    except OSError as e:
        return Check("ssh-agent", MISSING, f"SSH_AUTH_SOCK={sock} does not answer ({e.strerror or e})",
                     'eval "$(ssh-agent -s)" && ssh-add')
    return Check("ssh-agent", OK, f"answers at {sock}")


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]
    places: Places

    @property
    def failed(self) -> bool:
        return any(c.status == FAILED for c in self.checks)


def places_for(clouds: tuple[str, ...], regions: tuple[str, ...], projects: tuple[str, ...], records) -> Places:  # type: ignore[no-untyped-def]
    """Where leftovers may be: the places given, else the catalog's AWS regions with the configured
    one, and the configured GCP project; plus wherever a run in the journal went."""
    from infra import catalog
    from infra.cloud_defaults import aws_region, gcp_defaults

    aws: set[str] = set(regions)
    gcp: set[str] = set(projects)
    if "aws" in clouds and not regions:
        aws |= {r for e in catalog.load().entries("aws") for r in e.regions}
        aws |= {r for r in (aws_region(),) if r}
    if "gcp" in clouds and not projects:
        gcp |= {p for p in (gcp_defaults().project,) if p}
    for r in records:
        c = r.spec.cloud
        if c is None:
            continue
        if r.spec.target == "aws" and "aws" in clouds and c.region and not regions:
            aws.add(c.region)
        if r.spec.target == "gcp" and "gcp" in clouds and c.project and not projects:
            gcp.add(c.project)
    return Places(aws_regions=tuple(sorted(aws)) if "aws" in clouds else (),
                  gcp_projects=tuple(sorted(gcp)) if "gcp" in clouds else ())


def examine(only: str | None, regions: tuple[str, ...], projects: tuple[str, ...], records) -> Report:  # type: ignore[no-untyped-def]
    """The checks, and the places to sweep: every cloud asked for (`only`), else each cloud whose
    credentials this computer has."""
    from infra.cloud_defaults import aws_region

    checks = [check_pulumi()]
    clouds = []
    for cloud in ("aws", "gcp"):
        if only not in (None, cloud):
            continue  # not even asked: finding GCP credentials may query the metadata server
        cred = aws_credentials() if cloud == "aws" else gcp_credentials()
        have = cred.status == OK
        if only == cloud and not have:
            cred = Check(cred.name, FAILED, cred.detail, cred.fix)  # asked for by name: its absence fails
        checks += [cred, check_extra(cloud, have)]
        if have:
            clouds.append(cloud)
            checks.append(check_clock(cloud, (regions[0] if regions else aws_region()) if cloud == "aws" else None))
    checks.append(check_ssh_agent())
    places = places_for(tuple(clouds), regions, projects, records)
    if "gcp" in clouds and not places.gcp_projects:
        checks.append(Check("project gcp", MISSING, "no GCP project is set (GOOGLE_CLOUD_PROJECT, gcloud's, or a run's): "
                            "GCP was not searched for leftovers; `trainrig doctor --project` names one"))
    return Report(checks=tuple(checks), places=places)


_AWS_REGION = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-\d+$")  # us-east-1
_GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")  # GCP project ids: 6-30 characters


def check_input(only: str | None, regions: tuple[str, ...], projects: tuple[str, ...]) -> None:
    """Bad places are one sentence (exit 2) before any cloud is asked."""
    for r in regions:
        if not _AWS_REGION.match(r):
            raise BadInput(f"--region {r!r} is not an aws region name: write it like us-east-1.")
    for p in projects:
        if not _GCP_PROJECT.match(p):
            raise BadInput(f"--project {p!r} is not a GCP project id (6-30 lowercase letters, digits and hyphens).")
    if only == "gcp" and regions:
        raise BadInput("--region is for aws; a gcp sweep is placed by --project.")
    if only == "aws" and projects:
        raise BadInput("--project is for gcp; an aws sweep is placed by --region.")


@dataclass(frozen=True)
class Diagnosis:
    report: Report
    listing: Listing

    @property
    def healthy(self) -> bool:
        """Exit 0: no check failed, every place could be listed, and nothing is left over."""
        return not self.report.failed and not self.listing.errors and not self.listing.leftovers


def diagnose(only: str | None, regions: tuple[str, ...], projects: tuple[str, ...], journal: Journal) -> Diagnosis:
    """The checks, then the leftovers: resources labelled by trainrig whose run no live run of this
    journal is (a destroyed run's resources are leftovers; a provisioning one's are not)."""
    check_input(only, regions, projects)
    records = journal.all()
    report = examine(only, regions, projects, records)
    known = {r.run_id for r in records if r.state != RunState.DESTROYED}
    return Diagnosis(report, find(report.places, known))
