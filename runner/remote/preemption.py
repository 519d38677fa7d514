"""The cloud's preemption notice, read from the machine's metadata server (standard library only).

GCP: `instance/preempted` says TRUE once a spot/preemptible VM is being taken back (about 30 s
before it stops), and `instance/maintenance-event` says TERMINATE_ON_HOST_MAINTENANCE before a
host maintenance that ends the VM (a live migration, MIGRATE_ON_HOST_MAINTENANCE, does not).
Docs: cloud.google.com/compute/docs/instances/spot#preemption and .../metadata/querying-metadata.
AWS: IMDSv2 (a session token from PUT /latest/api/token) then GET
/latest/meta-data/spot/instance-action: 404 until an interruption is scheduled, then
{"action": "terminate"|"stop"|"hibernate", "time": "<UTC>"} about two minutes ahead.
Docs: docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html.

Tested against a local HTTP server that imitates these documented responses, never a real cloud.
"""

import calendar
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

BASE = {"gcp": "http://metadata.google.internal/computeMetadata/v1/", "aws": "http://169.254.169.254/latest/"}
GRACE_S = {"gcp": 30.0, "aws": 120.0}  # what each cloud gives between the notice and the end
TIMEOUT_S = 2.0
AWS_TOKEN_TTL_S = 21600


@dataclass(frozen=True)
class PreemptionNotice:
    cloud: str
    grace_s: float  # seconds left until the machine goes
    detail: str  # what the metadata server said

    def training_grace_s(self):
        """How long the training may take to end: the rest of the grace goes to the final sync."""
        reserve = max(10.0, self.grace_s / 4)
        return max(3.0, self.grace_s - reserve)


class Watcher:
    """`check()` returns a PreemptionNotice once the cloud has announced one, else None. A metadata
    server that cannot be reached is no notice (the last error stays in `error`)."""

    def __init__(self, cloud, base=None, timeout_s=TIMEOUT_S):
        if cloud not in BASE:
            raise ValueError("no preemption notice is known for %r" % cloud)
        self.cloud = cloud
        self.base = (base or BASE[cloud]).rstrip("/") + "/"
        self.timeout_s = timeout_s
        self.error = ""
        self._token = None
        self._token_until = 0.0

    def check(self):
        try:
            notice = self._gcp() if self.cloud == "gcp" else self._aws()
            self.error = ""
            return notice
        except (OSError, ValueError) as e:  # URLError is an OSError; a garbled body a ValueError
            self.error = str(e)
            return None

    def _get(self, path, headers, method="GET"):
        """(status, body); a 404 is an answer, not an error."""
        req = urllib.request.Request(self.base + path, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return r.status, r.read().decode("utf-8", "replace").strip()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return 404, ""
            raise

    def _gcp(self):
        flavor = {"Metadata-Flavor": "Google"}
        _, preempted = self._get("instance/preempted", flavor)
        if preempted.upper() == "TRUE":
            return PreemptionNotice("gcp", GRACE_S["gcp"], "instance/preempted: TRUE")
        status, event = self._get("instance/maintenance-event", flavor)
        if status == 200 and event.upper().startswith("TERMINATE"):
            return PreemptionNotice("gcp", GRACE_S["gcp"], "instance/maintenance-event: %s" % event)
        return None

    def _aws(self):
        if self._token is None or time.monotonic() > self._token_until:
            _, self._token = self._get("api/token", {"X-aws-ec2-metadata-token-ttl-seconds": str(AWS_TOKEN_TTL_S)}, "PUT")
            self._token_until = time.monotonic() + AWS_TOKEN_TTL_S / 2
        status, body = self._get("meta-data/spot/instance-action", {"X-aws-ec2-metadata-token": self._token})
        if status != 200 or not body:
            return None
        action = json.loads(body)
        grace = GRACE_S["aws"]
        when = action.get("time")
        if when:
            grace = max(0.0, calendar.timegm(time.strptime(when[:19], "%Y-%m-%dT%H:%M:%S")) - time.time())
        return PreemptionNotice("aws", grace, "spot/instance-action: %s at %s" % (action.get("action"), when))


def watcher_for(config):
    """The watcher the supervisor's config asks for, or None."""
    if not getattr(config, "preemption_watch", None):
        return None
    return Watcher(config.preemption_watch, config.metadata_url)
