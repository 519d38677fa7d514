"""What the GCP and AWS provider rules share: the name a resource will really get, and CIDR parsing."""

from __future__ import annotations

import ipaddress
import re

from tests.infra.components.harness import Declared

# Pulumi's mocks do not auto-name, so a resource without an explicit name is checked under the name
# the provider would give it: the logical name plus "-" and 7 random hex characters
# (https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming).
AUTONAME_SUFFIX = "-a1b2c3d"
# RFC 1035 labels, as Compute Engine spells its resource names (and TPU node ids, network tags):
# https://cloud.google.com/compute/docs/naming-resources#resource-name-format
RFC1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def physical_name(d: Declared, field: str) -> str:
    """The name the cloud will see: the explicit one, else Pulumi's auto-name."""
    value = d.plain.get(field)
    return str(value) if value else d.name + AUTONAME_SUFFIX


def cidr_problem(text: object, version: int | None = None) -> str | None:
    """Why `text` is not a range the clouds take (host bits set included: both APIs refuse it)."""
    try:
        net = ipaddress.ip_network(str(text), strict=True)
    except ValueError as e:
        return f"{text!r} is not a CIDR ({e})"
    if version and net.version != version:
        return f"{text} is not an IPv{version} range"
    return None


def number(value: object) -> int:
    """Pulumi's mocks hand numbers back as floats."""
    return int(value)  # type: ignore[arg-type]
