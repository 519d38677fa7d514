"""What a GCP machine of one run is allowed to do and who may reach it: a firewall that lets SSH in
from the user's address only, the run's output bucket (unless the user brings one), and the run's own
service account, with read rights on the dataset bucket and write rights on the output bucket, and
nothing at project level; plus the login metadata both kinds of machine carry."""

from __future__ import annotations

import hashlib
import re

import pulumi
import pulumi_gcp as gcp

from infra.components.boot_script import gcp_startup_script
from infra.components.gcp_network import run_network
from infra.stack_inputs import StackInputs

# Rights are granted on the buckets alone; the broad scope only lets IAM be the one that decides.
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_ACCOUNT_ID_MAX = 30  # GCP: 6-30 characters, [a-z][-a-z0-9]*[a-z0-9]


def base_name(inputs: StackInputs) -> str:
    """The logical name every child starts with; Pulumi adds an 8-character suffix to the cloud name."""
    return f"trainrig-{inputs.run_id}"


def bucket_logical_name(base: str) -> str:
    """The output bucket's name before Pulumi's suffix. GCS refuses names that start with "goog" or
    contain "google" or a close misspelling of it ("g00gle" is its own example of one), without
    publishing the list (https://cloud.google.com/storage/docs/buckets#naming); so a run whose name
    comes anywhere near it gets a neutral name (its labels still name the run)."""
    if looks_like_google(base):
        return f"trainrig-r{hashlib.sha256(base.encode()).hexdigest()[:12]}"
    return base


# Digits and letters that read like the letters of "google" (g00gle, goog1e, gooq1e).
_LOOKALIKES = str.maketrans({"0": "o", "1": "l", "i": "l", "3": "e", "9": "g", "q": "g", "6": "g"})


def looks_like_google(name: str) -> bool:
    """Whether `name`, with look-alike characters read as letters, holds something within two edits
    of "google" (a wider net than GCS casts: a false alarm only costs the run a neutral bucket name)."""
    text = name.lower().translate(_LOOKALIKES)
    if text.startswith("goog"):
        return True
    squeezed = re.sub(r"(.)\1+", r"\1\1", text)  # "gooooogle" is as close as "google"
    return any(_distance(t[i:i + n], "google") <= 2 for t in (text, squeezed) for n in range(4, 9)
               for i in range(len(t) - n + 1))


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def network_tag(inputs: StackInputs) -> str:
    """The tag the firewall targets: the run's machine, and nothing else in the project."""
    return f"trainrig-{inputs.run_id}"


def service_account_id(run_id: str) -> str:
    """A valid account id from the run id plus a short hash of it, so two runs never share one."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:6]
    room = _ACCOUNT_ID_MAX - len("tr--") - len(digest)
    return f"tr-{run_id[:room].rstrip('-')}-{digest}"


def gcp_metadata(inputs: StackInputs) -> dict[str, pulumi.Input[str]]:
    """Login with the run's key only (no project keys, no OS Login), and the boot script as a
    secret, because it holds the private host key."""
    script = gcp_startup_script(inputs.host_key, inputs.failsafe_minutes)
    return {
        "ssh-keys": f"{inputs.ssh_user}:{inputs.ssh_public_key.strip()}",
        "block-project-ssh-keys": "TRUE",
        "enable-oslogin": "FALSE",
        "startup-script": pulumi.Output.secret(script),
    }


# Compute regions without Cloud Storage of their own (us-central2 hosts only TPU v4): the nearest.
_BUCKET_REGION = {"us-central2": "us-central1"}


def bucket_location(region: str) -> str:
    """The output bucket's location: the machine's region where GCS has it (upper case, as GCS reports it)."""
    return _BUCKET_REGION.get(region, region).upper()


PEER_RULE_DESCRIPTION = "the run's machines to each other, every port; nothing from outside"


def peer_rule(base: str, inputs: StackInputs, network: pulumi.Input[str], tag: str,
              child: pulumi.ResourceOptions) -> gcp.compute.Firewall:
    """The run's machines reach each other on every port (torchrun's c10d rendezvous, NCCL and gloo, JAX's
    coordinator pick many): the source is the run's network tag alone, no address range, so nothing
    outside the run's own machines matches it (a rule with source tags and no source ranges admits only
    traffic from instances carrying the tag, on the rule's network:
    https://cloud.google.com/firewall/docs/firewalls#sources_for_ingress_rules). The network is the run's
    alone (gcp_network.py), so no other project VM sits on it either."""
    return gcp.compute.Firewall(
        f"{base}-peer",
        network=network,
        project=inputs.project,
        direction="INGRESS",
        allows=[gcp.compute.FirewallAllowArgs(protocol="all")],
        source_tags=[tag],
        target_tags=[tag],
        description=f"trainrig run {inputs.run_id}: {PEER_RULE_DESCRIPTION}",
        opts=child,
    )


class GcpAccess(pulumi.ComponentResource):
    """Firewall, output bucket and service account of one run (shared by the GPU VM and the TPU VM)."""

    network_tag: str
    network: pulumi.Output[str]
    subnetwork: pulumi.Output[str]
    service_account_email: pulumi.Output[str]
    output_bucket: pulumi.Output[str]

    def __init__(self, name: str, inputs: StackInputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainrig:gcp:Access", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base = base_name(inputs)
        self.network_tag = network_tag(inputs)
        net = run_network(base, inputs, child)
        self.network, self.subnetwork = net.network.id, net.subnetwork.id

        gcp.compute.Firewall(
            f"{base}-ssh",
            network=self.network,
            project=inputs.project,
            direction="INGRESS",
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["22"])],
            source_ranges=[inputs.ssh_from],
            target_tags=[self.network_tag],
            description=f"trainrig run {inputs.run_id}: SSH from the user address only",
            opts=child,
        )
        if inputs.host_count > 1:
            peer_rule(base, inputs, self.network, self.network_tag, child)

        account = gcp.serviceaccount.Account(
            f"{base}-sa",
            account_id=service_account_id(inputs.run_id),
            display_name=f"trainrig run {inputs.run_id}",
            description="Reads the run's dataset and writes its outputs; no project-level role.",
            project=inputs.project,
            opts=child,
        )
        self.service_account_email = account.email
        member = account.email.apply(lambda email: f"serviceAccount:{email}")

        if inputs.output_store_bucket is None:
            bucket = gcp.storage.Bucket(
                bucket_logical_name(base),
                location=bucket_location(inputs.offer.region),
                project=inputs.project,
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                force_destroy=True,  # the outputs are downloaded before the stack is destroyed
                # Soft delete (on by default, 7 days) would bill every checkpoint the minutely sync
                # overwrites for a week; 0 turns it off for this bucket alone.
                # https://cloud.google.com/storage/docs/soft-delete#retention-duration
                soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(retention_duration_seconds=0),
                labels=inputs.labels,
                opts=child,
            )
            self.output_bucket = bucket.name
        else:
            self.output_bucket = pulumi.Output.from_input(inputs.output_store_bucket)

        if inputs.dataset_bucket:
            gcp.storage.BucketIAMMember(
                f"{base}-dataset-read",
                bucket=inputs.dataset_bucket,
                role="roles/storage.objectViewer",
                member=member,
                opts=child,
            )
        gcp.storage.BucketIAMMember(
            f"{base}-output-write",
            bucket=self.output_bucket,
            role="roles/storage.objectAdmin",
            member=member,
            opts=child,
        )

        self.register_outputs(
            {
                "network_tag": self.network_tag,
                "network": self.network,
                "subnetwork": self.subnetwork,
                "service_account_email": self.service_account_email,
                "output_bucket": self.output_bucket,
            }
        )
