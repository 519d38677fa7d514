"""What a GCP machine of one run is allowed to do and who may reach it: a firewall that lets SSH in
from the user's address only, the run's output bucket (unless the user brings one), and the run's own
service account, with read rights on the dataset bucket and write rights on the output bucket, and
nothing at project level; plus the login metadata both kinds of machine carry."""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_gcp as gcp

from infra.components.boot_script import gcp_startup_script
from infra.stack_inputs import StackInputs

# Rights are granted on the buckets alone; the broad scope only lets IAM be the one that decides.
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_ACCOUNT_ID_MAX = 30  # GCP: 6-30 characters, [a-z][-a-z0-9]*[a-z0-9]


def base_name(inputs: StackInputs) -> str:
    """The logical name every child starts with; Pulumi adds an 8-character suffix to the cloud name."""
    return f"trainrig-{inputs.run_id}"


def bucket_logical_name(base: str) -> str:
    """GCS refuses bucket names that contain "google" (a run named after google-bert would fail at `up`)."""
    return base.replace("google", "g00gle")


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


class GcpAccess(pulumi.ComponentResource):
    """Firewall, output bucket and service account of one run (shared by the GPU VM and the TPU VM)."""

    network_tag: str
    service_account_email: pulumi.Output[str]
    output_bucket: pulumi.Output[str]

    def __init__(self, name: str, inputs: StackInputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainrig:gcp:Access", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base = base_name(inputs)
        self.network_tag = network_tag(inputs)

        gcp.compute.Firewall(
            f"{base}-ssh",
            network="default",
            project=inputs.project,
            direction="INGRESS",
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["22"])],
            source_ranges=[inputs.ssh_from],
            target_tags=[self.network_tag],
            description=f"trainrig run {inputs.run_id}: SSH from the user's address only",
            opts=child,
        )

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
                "service_account_email": self.service_account_email,
                "output_bucket": self.output_bucket,
            }
        )
