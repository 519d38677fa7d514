"""A cloud run's stack config, stacks/Pulumi.<run id>.yaml: the run spec under the `trainrig:`
namespace (plus the providers' own `gcp:` / `aws:` keys), written by trainrig and read back by it and
by the Pulumi program. One source of truth: switching a run between clouds is an edit of
`trainrig:target` (and `trainrig:accelerator` when the other cloud spells it differently). An image
override is kept under its cloud's key (`trainrig:gcpImage`, a Deep Learning VM family;
`trainrig:awsImage`, an AMI name pattern), so after a switch the other cloud's image is never used.
Several machines: `trainrig:nodes` (with `trainrig:launcher`, `trainrig:outputsFrom`), written only when
not the default, so a one-machine run's file is as it was.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from infra.cloud import CLOUD_TARGETS, CloudSpec
from infra.durations import exact_duration, parse_duration
from infra.errors import BadInput
from infra.spec import EntryPoint, Launcher, OutputsFrom, RunSpec, _check_nodes

NS = "trainrig"
# Structured values arrive in the Pulumi program as JSON text; in the YAML file as YAML.
_LISTS_AND_MAPS = ("command", "env")
_BOOLS = ("spot", "anyZone")
_INTS = ("diskGb", "nodes")


@dataclass(frozen=True)
class MachineKeys:
    """The run's SSH keys, made by trainrig: the login key's public half, and the host key's file
    (0600, in the run's journal folder) that the program hands to the machine as a secret."""

    ssh_public_key: str
    host_key_file: str


def config_path(stacks_dir: Path, run_id: str) -> Path:
    return stacks_dir / f"Pulumi.{run_id}.yaml"


def to_config(spec: RunSpec, keys: MachineKeys) -> dict[str, object]:
    """The spec as stack config values (full keys, `trainrig:codeName`), only those that are set."""
    cloud = spec.cloud
    if spec.target not in CLOUD_TARGETS or cloud is None:
        raise BadInput(f"run {spec.run_id} has target {spec.target}: only gcp and aws runs have a Pulumi stack.")
    values: dict[str, object] = {
        "target": spec.target, "codeName": spec.code_name, "datasetName": spec.dataset_name,
        "codePath": spec.code_path, "maxRuntime": exact_duration(spec.max_runtime_s),
        "syncInterval": exact_duration(spec.sync_interval_s), "accelerator": cloud.accelerator_text,
        "spot": cloud.spot, "diskGb": cloud.disk_gb, "sshFrom": cloud.ssh_from,
        "sshPublicKey": keys.ssh_public_key, "hostKeyFile": keys.host_key_file,
    }
    optional: dict[str, object | None] = {
        "module": spec.entry.module, "command": list(spec.entry.command) or None, "dataset": spec.dataset,
        "env": dict(spec.env) or None, "installScript": spec.install_script, "outputStore": spec.output_store,
        image_key(spec.target): cloud.image, "anyZone": True if cloud.any_zone else None,
        # Multi-node keys only when not the default, so a one-machine run's file stays as it was.
        "nodes": spec.nodes if spec.nodes != 1 else None,
        "launcher": spec.launcher.value if spec.launcher != Launcher.NONE else None,
        "outputsFrom": spec.outputs_from.value if spec.outputs_from != OutputsFrom.RANK0 else None,
    }
    values.update({k: v for k, v in optional.items() if v is not None})
    out: dict[str, object] = {f"{NS}:{k}": v for k, v in values.items()}
    if spec.target == "gcp":
        out.update({"gcp:project": cloud.project, "gcp:zone": cloud.zone, "gcp:region": cloud.region})
    else:
        out["aws:region"] = cloud.region
        if cloud.zone:
            out[f"{NS}:availabilityZone"] = cloud.zone
    return {k: v for k, v in out.items() if v is not None}


def image_key(target: str) -> str:
    """The config key (without namespace) of a cloud's image override: a GCP family is no AMI name."""
    return f"{target}Image"


LEGACY_IMAGE = f"{NS}:image"  # one key for both clouds, before the switch-safe keys


def _coerce(name: str, value: object) -> object:
    if isinstance(value, str):
        if name in _LISTS_AND_MAPS:
            return json.loads(value)
        if name in _BOOLS:
            return value.strip().lower() == "true"
        if name in _INTS:
            return int(value)
    return value


def from_config(get: Callable[[str], object | None]) -> tuple[RunSpec, MachineKeys]:
    """The spec back from config values; `get` takes a full key (`trainrig:target`) and returns its
    value, or None when it is not set."""

    def value(key: str, required: bool = False) -> object | None:
        ns, _, name = key.partition(":")
        v = get(key)
        if v is None and required:
            raise BadInput(f"the stack config has no {key}: recreate it with `trainrig up` or add it to the file.")
        try:
            return None if v is None else _coerce(name, v)
        except ValueError as e:
            raise BadInput(f"the stack config's {key} ({v!r}) cannot be read: {e}.") from e

    target = str(value(f"{NS}:target", True))
    if target not in CLOUD_TARGETS:
        raise BadInput(f"trainrig:target is {target!r} in the stack config: a stack is for gcp or aws.")
    if get(LEGACY_IMAGE) is not None:
        raise BadInput(f"the stack config's {LEGACY_IMAGE} names no cloud: rename it to {NS}:{image_key(target)} "
                       f"(the {target} image) or remove it.")
    accelerator, _, count = str(value(f"{NS}:accelerator", True)).partition(":")
    if target == "gcp":
        zone, region, project = value("gcp:zone"), value("gcp:region"), value("gcp:project")
    else:
        zone, region, project = value(f"{NS}:availabilityZone"), value("aws:region"), None
    cloud = CloudSpec(
        accelerator=accelerator, count=int(count) if count else 1, zone=_opt(zone), region=_opt(region),
        project=_opt(project), spot=bool(value(f"{NS}:spot")), disk_gb=int(value(f"{NS}:diskGb", True)),  # type: ignore[arg-type]
        ssh_from=str(value(f"{NS}:sshFrom", True)), image=_opt(value(f"{NS}:{image_key(target)}")),
        any_zone=bool(value(f"{NS}:anyZone")),
    )
    command = value(f"{NS}:command") or []
    env = value(f"{NS}:env") or {}
    spec = RunSpec(
        code_name=str(value(f"{NS}:codeName", True)), dataset_name=str(value(f"{NS}:datasetName", True)),
        code_path=str(value(f"{NS}:codePath", True)),
        entry=EntryPoint(module=_opt(value(f"{NS}:module")), command=tuple(str(c) for c in command)),  # type: ignore[union-attr]
        target=target, dataset=_opt(value(f"{NS}:dataset")),
        env=tuple((str(k), str(v)) for k, v in env.items()),  # type: ignore[union-attr]
        max_runtime_s=parse_duration(str(value(f"{NS}:maxRuntime", True)), "trainrig:maxRuntime"),
        sync_interval_s=parse_duration(str(value(f"{NS}:syncInterval", True)), "trainrig:syncInterval"),
        install_script=_opt(value(f"{NS}:installScript")), output_store=_opt(value(f"{NS}:outputStore")),
        cloud=cloud, **_node_options(value),
    )
    keys = MachineKeys(ssh_public_key=str(value(f"{NS}:sshPublicKey", True)),
                       host_key_file=str(value(f"{NS}:hostKeyFile", True)))
    return spec, keys


def _node_options(value: Callable[[str], object | None]) -> dict[str, object]:
    """nodes, launcher and outputs-from, checked as `--nodes/--launcher/--outputs-from` are."""
    given = value(f"{NS}:nodes")
    nodes = 1 if given is None else int(given)  # type: ignore[call-overload]
    launcher = str(value(f"{NS}:launcher") or Launcher.NONE.value)
    outputs_from = str(value(f"{NS}:outputsFrom") or OutputsFrom.RANK0.value)
    target = str(value(f"{NS}:target"))
    how, which = _check_nodes(target, nodes, launcher, outputs_from)
    return {"nodes": nodes, "launcher": how, "outputs_from": which}


def _opt(v: object | None) -> str | None:
    return None if v is None or v == "" else str(v)


def write(stacks_dir: Path, spec: RunSpec, keys: MachineKeys) -> Path:
    """Write (or rewrite) the run's stack config file, keeping what Pulumi itself put there
    (encryptionsalt, secrets, other namespaces)."""
    import yaml

    path = config_path(stacks_dir, spec.run_id)
    doc = read_document(path)
    config = {k: v for k, v in (doc.get("config") or {}).items() if not k.startswith(f"{NS}:")}
    config.update(to_config(spec, keys))
    doc["config"] = config
    stacks_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    # 0600: `--env` values (often tokens) are in it, in plain text like the journal's record.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    tmp.write_text("# trainrig run " + spec.run_id + ": written by `trainrig up`, read by it and by `pulumi up -s "
                   + spec.run_id + "`\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    tmp.replace(path)
    return path


def read_document(path: Path) -> dict:
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise BadInput(f"{path} is not valid YAML ({e}): fix it or remove it and run `trainrig up` again.") from e
    if not isinstance(doc, dict):
        raise BadInput(f"{path} is not a Pulumi stack config (no `config:` mapping): fix it or remove it.")
    return doc


def read(stacks_dir: Path, run_id: str) -> tuple[RunSpec, MachineKeys]:
    path = config_path(stacks_dir, run_id)
    if not path.exists():
        raise BadInput(f"there is no stack config {path}: `trainrig up` writes it.")
    config: Mapping[str, object] = read_document(path).get("config") or {}
    spec, keys = from_config(config.get)
    if spec.run_id != run_id:
        raise BadInput(f"{path} names run {spec.run_id}, not {run_id}: its codeName/datasetName were edited; rename the file or undo the edit.")
    return spec, keys


def spec_from_stack(stacks_dir: Path, run_id: str, home: Path) -> RunSpec:
    """`trainrig up RUN`: the run as its stack config file describes it (e.g. after switching
    `trainrig:target`), checked like options given on the command line. A file written by another
    trainrig home (another TRAINRIG_HOME: its keys live there) is never taken for this home's run."""
    from dataclasses import replace

    from infra import catalog
    from infra.cloud import check_cloud_buckets, check_cloud_nodes, check_disk, check_image, parse_ssh_from

    spec, keys = read(stacks_dir, run_id)
    writer = Path(keys.host_key_file).resolve().parents[2]  # <home>/runs/<run>/host_key
    if writer != home.resolve():
        raise BadInput(f"{config_path(stacks_dir, run_id)} was written by another trainrig home ({writer}), not this one "
                       f"({home}): `TRAINRIG_HOME={writer} trainrig up {run_id}` uses that home, or remove the file to describe the run anew here.")
    cloud = spec.cloud
    assert cloud is not None
    if not Path(spec.code_path).is_dir():
        raise BadInput(f"the stack config's trainrig:codePath {spec.code_path} is not a folder: fix it in {config_path(stacks_dir, run_id)}.")
    check_cloud_buckets(spec.target, spec.dataset, spec.output_store)
    check_disk(spec.target, cloud.disk_gb)  # a run switched from gcp may hold a disk too small for aws
    check_image(spec.target, cloud.image)
    check_cloud_nodes(spec.target, cloud, spec.nodes)  # `trainrig:nodes` set on a TPU slice's run
    offer = catalog.resolve(spec.target, cloud.accelerator_text, zone=cloud.zone, region=cloud.region, spot=cloud.spot)
    cloud = replace(cloud, accelerator=offer.accelerator, count=offer.count, zone=offer.zone, region=offer.region,
                    ssh_from=parse_ssh_from(cloud.ssh_from) if cloud.ssh_from else "")
    return replace(spec, cloud=cloud)
