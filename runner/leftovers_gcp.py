"""GCP leftovers: Compute Engine instances and unattached disks (the cloud filters them by label),
TPU VMs and Cloud Storage buckets (filtered here: their list calls take no label filter).

Firewall rules, networks and subnetworks take no labels on GCP: a run's are known by their name
(`trainrig-<run id>-...`, infra/components) and their description (`trainrig run <run id>...`),
both required. A run's own network counts against the project's network quota, so it matters.
Service accounts (no labels, no description of that form, free) are not searched.
google-cloud-compute and google-cloud-tpu come with the gcp extra and are imported only when used.
With STORAGE_EMULATOR_HOST set (the tests' emulator) only buckets are asked: there is no Compute
or TPU emulator, and the emulator's project is not a real one."""

from __future__ import annotations

import os
import re
import shlex

from runner.leftovers import MANAGED_BY, MANAGED_KEY, RUN_KEY, Leftover, LeftoverError, Listing, hourly_price, utc

DELETE_WAIT_S = 600  # a deletion not done by then is an error (TimeoutError), never a wait without end
_FILTER = f'labels.{MANAGED_KEY} = "{MANAGED_BY}"'
_DESCRIBED = re.compile(r"^trainrig run ([a-z0-9][a-z0-9-]*[a-z0-9]|[a-z])(?::|$)")  # infra/components' descriptions


def _ours(labels: dict[str, str] | None, run_id: str | None) -> bool:
    labels = dict(labels or {})
    return labels.get(MANAGED_KEY) == MANAGED_BY and RUN_KEY in labels and (run_id is None or labels[RUN_KEY] == run_id)


def _last(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _emulated() -> bool:
    return bool(os.environ.get("STORAGE_EMULATOR_HOST"))


def _storage(project: str):  # type: ignore[no-untyped-def]
    from google.cloud import storage

    if _emulated():
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client(project=project)


def _buckets(project: str, run_id: str | None) -> list[Leftover]:
    out = []
    for b in _storage(project).list_buckets():
        if _ours(b.labels, run_id):
            out.append(Leftover("gcp", "bucket", b.name, (b.location or "").lower(), b.labels[RUN_KEY], utc(b.time_created),
                                None, shlex.join(["gcloud", "storage", "rm", "--recursive", f"gs://{b.name}", "--project", project]),
                                project=project))
    return out


def _compute(project: str, run_id: str | None) -> list[Leftover]:
    from google.cloud import compute_v1

    # One expression on the cloud's side (the run id is compared here, by _ours): a compound filter
    # needs each part in parentheses, and a malformed one fails the whole listing.
    wanted = _FILTER
    out = []
    for _scope, part in compute_v1.InstancesClient().aggregated_list(request={"project": project, "filter": wanted}):
        for i in part.instances:
            if not _ours(i.labels, run_id):
                continue
            zone, running = _last(i.zone), i.status in ("PROVISIONING", "STAGING", "RUNNING")
            gpus = list(i.guest_accelerators)
            spot = i.scheduling.provisioning_model == "SPOT"
            price = hourly_price("gcp", _last(i.machine_type), _last(gpus[0].accelerator_type) if gpus else None,
                                 gpus[0].accelerator_count if gpus else 0, spot=spot) if running else None
            out.append(Leftover("gcp", "instance", i.name, zone, i.labels[RUN_KEY], utc(i.creation_timestamp), price,
                                shlex.join(["gcloud", "compute", "instances", "delete", i.name, "--zone", zone,
                                            "--project", project, "--quiet"]), project=project, state=i.status.lower()))
    for _scope, part in compute_v1.DisksClient().aggregated_list(request={"project": project, "filter": wanted}):
        for d in part.disks:
            if d.users or not _ours(d.labels, run_id):
                continue  # a disk in use goes with its instance (auto-delete)
            zone = _last(d.zone)
            out.append(Leftover("gcp", "disk", d.name, zone, d.labels[RUN_KEY], utc(d.creation_timestamp), None,
                                shlex.join(["gcloud", "compute", "disks", "delete", d.name, "--zone", zone,
                                            "--project", project, "--quiet"]), project=project))
    return out


def _tpus(project: str, run_id: str | None) -> list[Leftover]:
    from google.cloud import tpu_v2

    out = []
    for n in tpu_v2.TpuClient().list_nodes(parent=f"projects/{project}/locations/-"):  # "-": every zone
        if not _ours(n.labels, run_id):
            continue
        name, zone = _last(n.name), n.name.split("/")[3]
        running = n.state.name in ("CREATING", "READY", "RESTARTING", "STARTING")
        spot = bool(n.scheduling_config.spot or n.scheduling_config.preemptible)
        out.append(Leftover("gcp", "tpu-node", name, zone, n.labels[RUN_KEY], utc(n.create_time or None),
                            hourly_price("gcp", n.accelerator_type, spot=spot) if running else None,
                            shlex.join(["gcloud", "compute", "tpus", "tpu-vm", "delete", name, "--zone", zone,
                                        "--project", project, "--quiet"]), project=project, state=n.state.name.lower()))
    return out


def _described_run(name: str, description: str, run_id: str | None) -> str | None:
    """The run a network, subnetwork or firewall rule belongs to, when both its name and its
    description say it is a trainrig run's (and, with `run_id`, that run's)."""
    m = _DESCRIBED.match(description or "")
    if not m or not name.startswith(f"trainrig-{m.group(1)}-") or run_id not in (None, m.group(1)):
        return None
    return m.group(1)


def _networks(project: str, run_id: str | None) -> list[Leftover]:
    from google.cloud import compute_v1

    out = []
    for f in compute_v1.FirewallsClient().list(project=project):
        rid = _described_run(f.name, f.description, run_id)
        if rid:
            out.append(Leftover("gcp", "firewall", f.name, "global", rid, utc(f.creation_timestamp), None, shlex.join(
                ["gcloud", "compute", "firewall-rules", "delete", f.name, "--project", project, "--quiet"]), project=project))
    for _scope, part in compute_v1.SubnetworksClient().aggregated_list(request={"project": project}):
        for s in part.subnetworks:
            rid = _described_run(s.name, s.description, run_id)
            if rid:
                region = _last(s.region)
                out.append(Leftover("gcp", "subnetwork", s.name, region, rid, utc(s.creation_timestamp), None, shlex.join(
                    ["gcloud", "compute", "networks", "subnets", "delete", s.name, "--region", region, "--project", project,
                     "--quiet"]), project=project))
    for n in compute_v1.NetworksClient().list(project=project):
        rid = _described_run(n.name, n.description, run_id)
        if rid:
            out.append(Leftover("gcp", "network", n.name, "global", rid, utc(n.creation_timestamp), None, shlex.join(
                ["gcloud", "compute", "networks", "delete", n.name, "--project", project, "--quiet"]), project=project))
    return out


def list_leftovers(projects: tuple[str, ...], run_id: str | None) -> Listing:
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    found: list[Leftover] = []
    errors: list[str] = []
    skipped: list[str] = []
    for project in projects:
        parts = [("buckets", _buckets)]
        if _emulated():
            skipped.append(f"gcp {project}: instances, disks, TPU VMs and networks (STORAGE_EMULATOR_HOST is set: no Compute emulator)")
        else:
            parts += [("instances and disks", _compute), ("TPU VMs", _tpus), ("networks and firewall rules", _networks)]
        for what, call in parts:
            try:
                found += call(project, run_id)
            except ImportError as e:
                errors.append(f"gcp {project} {what}: {e.name} is not installed (`pip install -e '.[gcp]'` in trainrig's folder)")
            except (GoogleAPIError, GoogleAuthError, OSError) as e:
                errors.append(f"gcp {project} {what}: {e}")
    return Listing(leftovers=tuple(found), errors=tuple(errors), skipped=tuple(skipped))


def delete(f: Leftover) -> None:
    from concurrent.futures import TimeoutError as WaitedTooLong  # not yet the builtin one on Python 3.10

    from google.api_core.exceptions import GoogleAPIError, NotFound
    from google.auth.exceptions import GoogleAuthError

    try:
        _delete(f)
    except NotFound:
        return  # gone already
    except (GoogleAPIError, GoogleAuthError, OSError, WaitedTooLong) as e:
        raise LeftoverError(f"gcp {f.kind} {f.id}: {e}") from e


def _delete(f: Leftover) -> None:
    if f.kind == "bucket":
        bucket = _storage(f.project).bucket(f.id)
        for blob in bucket.list_blobs(versions=True):  # every generation, or a versioned bucket stays non-empty
            bucket.delete_blob(blob.name, generation=blob.generation)
        bucket.delete()
    elif f.kind == "instance":
        from google.cloud import compute_v1

        compute_v1.InstancesClient().delete(project=f.project, zone=f.where, instance=f.id).result(timeout=DELETE_WAIT_S)
    elif f.kind == "disk":
        from google.cloud import compute_v1

        compute_v1.DisksClient().delete(project=f.project, zone=f.where, disk=f.id).result(timeout=DELETE_WAIT_S)
    elif f.kind in ("firewall", "subnetwork", "network"):
        from google.cloud import compute_v1

        if f.kind == "firewall":
            compute_v1.FirewallsClient().delete(project=f.project, firewall=f.id).result(timeout=DELETE_WAIT_S)
        elif f.kind == "subnetwork":
            compute_v1.SubnetworksClient().delete(project=f.project, region=f.where, subnetwork=f.id).result(timeout=DELETE_WAIT_S)
        else:
            compute_v1.NetworksClient().delete(project=f.project, network=f.id).result(timeout=DELETE_WAIT_S)
    elif f.kind == "tpu-node":
        from google.cloud import tpu_v2

        tpu_v2.TpuClient().delete_node(name=f"projects/{f.project}/locations/{f.where}/nodes/{f.id}").result(timeout=DELETE_WAIT_S)
    else:
        raise AssertionError(f.kind)
