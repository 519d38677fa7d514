"""Where a user's cloud tools keep their defaults: the GCP project and zone (gcloud's configuration),
the AWS region (the AWS config). Read as files, so neither gcloud nor an SDK is needed to find them."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GcpDefaults:
    project: str | None
    zone: str | None


def _gcloud_config() -> configparser.ConfigParser:
    root = Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
    active = os.environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    if not active:
        try:
            active = (root / "active_config").read_text().strip() or "default"
        except OSError:
            active = "default"
    parser = configparser.ConfigParser()
    try:
        parser.read(root / "configurations" / f"config_{active}")
    except configparser.Error:
        pass  # a broken gcloud config is gcloud's to report; we just find no default
    return parser


def gcp_defaults() -> GcpDefaults:
    cfg = _gcloud_config()
    project = (os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT")
               or cfg.get("core", "project", fallback=None))
    zone = os.environ.get("CLOUDSDK_COMPUTE_ZONE") or cfg.get("compute", "zone", fallback=None)
    return GcpDefaults(project=project or None, zone=zone or None)


def aws_region() -> str | None:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    path = Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config")
    profile = os.environ.get("AWS_PROFILE") or "default"
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return None
    section = "default" if profile == "default" else f"profile {profile}"
    return parser.get(section, "region", fallback=None)
