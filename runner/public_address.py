"""This computer's public address, as the internet sees it: the default SSH source range of a
cloud run's firewall. Asked of two plain-text echo services; never guessed."""

from __future__ import annotations

import ipaddress
import urllib.request

from runner.errors import BadInput

SERVICES = ("https://checkip.amazonaws.com", "https://api.ipify.org")
TIMEOUT_S = 4.0


def public_cidr(services: tuple[str, ...] = SERVICES, timeout: float = TIMEOUT_S) -> str:
    """`address/32` (or /128); BadInput naming --ssh-from when no service answers sensibly."""
    reasons = []
    for url in services:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (fixed https URLs)
                text = r.read(100).decode("ascii", "replace").strip()
            address = ipaddress.ip_address(text)
        except (OSError, ValueError) as e:
            reasons.append(f"{url}: {getattr(e, 'reason', None) or e}")
            continue
        if not address.is_global:
            reasons.append(f"{url} answered {address}, which is not a public address")
            continue
        return f"{address}/{address.max_prefixlen}"
    raise BadInput(
        "cannot find this computer's public address for the machine's firewall (" + "; ".join(reasons) + "): "
        "pass --ssh-from with your address range, e.g. --ssh-from 203.0.113.7/32."
    )
