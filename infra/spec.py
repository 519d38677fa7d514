"""The run spec: everything that defines one training run. A run's stack config is this spec."""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from infra import names
from infra.cloud import CLOUD_TARGETS, CloudOptions, CloudSpec, build_cloud, check_cloud_buckets, check_cloud_nodes
from infra.errors import BadInput

TARGETS = ("local", "ssh", *CLOUD_TARGETS)
DEFAULT_MAX_RUNTIME_S = 12 * 3600
DEFAULT_SYNC_INTERVAL_S = 60
REQUIREMENTS_FILE = "requirements.txt"
DEFAULT_INSTALL_SCRIPT = "install.sh"
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
RESERVED_ENV = ("TRAINRIG_DATASET_DIR", "TRAINRIG_OUTPUT_DIR", "TRAINRIG_LOGS_DIR", "TRAINRIG_RUN_ID",
                # multi-node runs: set per node by trainrig (runner/nodes.py)
                "TRAINRIG_NODE_RANK", "TRAINRIG_NUM_NODES", "TRAINRIG_NODE_IPS", "TRAINRIG_MASTER_ADDR",
                "TRAINRIG_GPUS_PER_NODE", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK")
MAX_NODES = 64
NODE_TARGETS = ("local", "gcp", "aws")  # the ssh target is one machine the user owns


class Launcher(str, Enum):
    """How the training is started on each node: as given, or wrapped in PyTorch's torchrun."""

    NONE = "none"
    TORCHRUN = "torchrun"


class OutputsFrom(str, Enum):
    """Which nodes' outputs come home: rank 0's (default), or each node's under node-K/."""

    RANK0 = "rank0"
    ALL = "all"


@dataclass(frozen=True)
class EntryPoint:
    """`python -m module --dataset_directory D ...` or any command line (split, never run by a shell)."""

    module: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()  # appended to either (a sweep trial's `--name value` parameters)

    def describe(self) -> str:
        if self.module:
            return f"python -m {self.module} --dataset_directory D --output_directory O --logs_directory L"
        return shlex.join(self.command)


@dataclass(frozen=True)
class SshHost:
    """A machine the user owns: `user@address[:port]`."""

    user: str
    address: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> "SshHost":
        m = re.match(r"^(?:([A-Za-z0-9._-]+)@)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d+))?$", text)
        if not m:
            raise BadInput(f"--host {text!r} is not valid: write it as user@address or user@address:port.")
        import getpass

        port = int(m.group(3)) if m.group(3) else 22
        if not 0 < port < 65536:
            raise BadInput(f"--host {text!r} has port {port}: use a port between 1 and 65535.")
        return cls(user=m.group(1) or getpass.getuser(), address=m.group(2).strip("[]"), port=port)

    def __str__(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


@dataclass(frozen=True)
class RunSpec:
    code_name: str
    dataset_name: str
    code_path: str
    entry: EntryPoint
    target: str = "local"
    dataset: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    max_runtime_s: int = DEFAULT_MAX_RUNTIME_S
    sync_interval_s: int = DEFAULT_SYNC_INTERVAL_S
    install_script: str | None = None
    host: SshHost | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    python: str | None = None  # ssh target: the interpreter on the machine (default: python3 as its PATH finds it)
    output_store: str | None = None  # gs://... or s3://...: the run's outputs go to <store>/<run id>/
    cloud: CloudSpec | None = None  # targets gcp and aws: the machine to rent
    nodes: int = 1  # machines that train together (rank 0 first); a TPU pod slice's hosts are not nodes
    launcher: Launcher = Launcher.NONE
    outputs_from: OutputsFrom = OutputsFrom.RANK0
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def run_id(self) -> str:
        return names.run_id(self.code_name, self.dataset_name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("notes")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        d = dict(d)
        d["entry"] = EntryPoint(module=d["entry"].get("module"), command=tuple(d["entry"].get("command") or ()),
                                args=tuple(d["entry"].get("args") or ()))
        d["env"] = tuple(tuple(kv) for kv in d.get("env") or ())
        d["host"] = SshHost(**d["host"]) if d.get("host") else None
        d["cloud"] = CloudSpec(**d["cloud"]) if d.get("cloud") else None
        d["launcher"] = Launcher(d.get("launcher") or Launcher.NONE)
        d["outputs_from"] = OutputsFrom(d.get("outputs_from") or OutputsFrom.RANK0)
        return cls(**d)


_BUCKET_URI = re.compile(r"^(gs|s3)://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(/[^\s]*)?$")


def is_bucket(uri: str | None) -> bool:
    return bool(uri) and "://" in uri  # type: ignore[operator]


def _bucket_uri(uri: str, option: str) -> str:
    m = _BUCKET_URI.match(uri)
    if not m or "//" in (m.group(3) or "")[1:] or any(p in (".", "..") for p in (m.group(3) or "").split("/")):
        raise BadInput(f"{option} {uri!r} is not a bucket location: write it as gs://BUCKET/PATH or s3://BUCKET/PATH.")
    return uri.rstrip("/")


def parse_env(pairs: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise BadInput(f"--env {pair!r} is not valid: write it as KEY=VALUE with KEY like MY_VAR.")
        if key in RESERVED_ENV:
            raise BadInput(f"--env {key} is set by trainrig itself: use another name.")
        out.append((key, value))
    return tuple(out)


def _module_exists(code: Path, module: str) -> bool:
    base = code.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__main__.py").is_file() or (base / "__init__.py").is_file()


def resolve_entry(code: Path, module: str | None, command: str | None) -> tuple[EntryPoint, tuple[str, ...]]:
    """The entry point, checked against the code folder; returns it with notes to show the user."""
    if module and command:
        raise BadInput("give either --module or --command, not both.")
    if command is not None:
        try:
            argv = tuple(shlex.split(command))
        except ValueError as e:
            raise BadInput(f"--command {command!r} cannot be split into words ({e}): check its quotes.") from e
        if not argv:
            raise BadInput("--command is empty: give the command that trains, e.g. --command 'python train.py'.")
        return EntryPoint(command=argv), ()
    if module:
        if not _MODULE.match(module):
            raise BadInput(f"--module {module!r} is not a Python module name (e.g. train or trainer.main).")
        if not _module_exists(code, module):
            raise BadInput(
                f"--module {module}: no {module.replace('.', '/')}.py (or package) in {code}; "
                "check the name or the code folder."
            )
        return EntryPoint(module=module), ()
    if (code / "train.py").is_file():
        return EntryPoint(module="train"), (
            "no --module or --command given: running train.py as `python -m train` with the three directories.",
        )
    raise BadInput(
        f"no entry point found in {code}: add a train.py, or pass --module M or --command 'python x.py'."
    )


def build_spec(
    *,
    code: str,
    code_name: str | None,
    dataset_name: str | None,
    dataset: str | None = None,
    module: str | None = None,
    command: str | None = None,
    env: list[str] | None = None,
    target: str = "local",
    max_runtime_s: int = DEFAULT_MAX_RUNTIME_S,
    sync_interval_s: int = DEFAULT_SYNC_INTERVAL_S,
    install_script: str | None = None,
    host: str | None = None,
    identity_file: str | None = None,
    known_hosts: str | None = None,
    output_store: str | None = None,
    cloud: CloudOptions | None = None,
    python: str | None = None,
    nodes: int = 1,
    launcher: str = Launcher.NONE.value,
    outputs_from: str = OutputsFrom.RANK0.value,
) -> RunSpec:
    """Check everything that can be checked on this computer; raise BadInput with one sentence."""
    code_dir = Path(code).expanduser()
    if not code_dir.is_dir():
        raise BadInput(f"the code folder {code} does not exist: give the folder that holds your training script.")
    code_dir = code_dir.resolve()
    if target not in TARGETS:
        raise BadInput(f"--target {target!r} is not known: choose one of {', '.join(TARGETS)}.")
    code_name = code_name or names.suggest(code_dir.name)
    if not dataset_name:
        if dataset is None:
            dataset_name = "none"
        else:
            raise BadInput("--dataset-name is missing: name the dataset (e.g. --dataset-name beer-v2).")
    names.run_id(code_name, dataset_name)
    entry, notes = resolve_entry(code_dir, module, command)
    dataset_path = None
    if dataset is not None:
        if "://" in dataset:
            dataset_path = _bucket_uri(dataset, "--dataset")
        else:
            d = Path(dataset).expanduser()
            if not d.is_dir():
                raise BadInput(f"the dataset folder {dataset} does not exist: give an existing folder or a bucket URI.")
            dataset_path = str(d.resolve())
    if output_store is not None:
        output_store = _bucket_uri(output_store, "--output-store")
    if install_script is not None:
        inside = (code_dir / install_script).resolve()
        if not inside.is_relative_to(code_dir) or not inside.is_file():
            raise BadInput(f"the install script {install_script} is not in {code_dir}: give a path inside the code folder.")
    elif (code_dir / DEFAULT_INSTALL_SCRIPT).is_file():
        install_script = DEFAULT_INSTALL_SCRIPT
    cloud_spec = None
    if target in CLOUD_TARGETS:
        check_cloud_buckets(target, dataset_path, output_store)
        cloud_spec = build_cloud(target, cloud or CloudOptions())
    elif cloud and cloud.given():
        given = cloud.given()
        raise BadInput(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to --target gcp or aws "
                       f"(the target is {target}).")
    ssh_host = None
    if target == "ssh":
        if not host:
            raise BadInput("--target ssh needs --host user@address[:port].")
        ssh_host = SshHost.parse(host)
    elif host:
        raise BadInput(f"--host is only for --target ssh (the target is {target}).")
    if python is not None:
        if target != "ssh":
            raise BadInput(f"--python is only for --target ssh (the target is {target}).")
        if not python or any(c.isspace() for c in python):
            raise BadInput(f"--python {python!r} is not an interpreter: give its path on the machine, e.g. /opt/conda/bin/python.")
    node_opts = _check_nodes(target, nodes, launcher, outputs_from)
    check_cloud_nodes(target, cloud_spec, nodes)
    if identity_file is not None and not Path(identity_file).expanduser().is_file():
        raise BadInput(f"the key file {identity_file} does not exist: give the path of your private key.")
    if known_hosts is not None and not Path(known_hosts).expanduser().is_file():
        raise BadInput(f"the known_hosts file {known_hosts} does not exist.")
    return RunSpec(
        code_name=code_name,
        dataset_name=dataset_name,
        code_path=str(code_dir),
        entry=entry,
        target=target,
        dataset=dataset_path,
        env=parse_env(env or []),
        max_runtime_s=max_runtime_s,
        sync_interval_s=sync_interval_s,
        install_script=install_script,
        host=ssh_host,
        identity_file=str(Path(identity_file).expanduser().resolve()) if identity_file else None,
        known_hosts=str(Path(known_hosts).expanduser().resolve()) if known_hosts else None,
        python=python,
        output_store=output_store,
        cloud=cloud_spec,
        nodes=nodes,
        launcher=node_opts[0],
        outputs_from=node_opts[1],
        notes=notes,
    )


def _check_nodes(target: str, nodes: int, launcher: str, outputs_from: str) -> tuple[Launcher, OutputsFrom]:
    if not 1 <= nodes <= MAX_NODES:
        raise BadInput(f"--nodes {nodes} is not possible: give a number of machines from 1 to {MAX_NODES}.")
    if nodes > 1 and target not in NODE_TARGETS:
        raise BadInput(f"--nodes {nodes} needs machines trainrig makes (--target {', '.join(NODE_TARGETS)}); "
                       f"the {target} target is one machine.")
    try:
        how = Launcher(launcher)
    except ValueError:
        raise BadInput(f"--launcher {launcher!r} is not known: choose one of {', '.join(m.value for m in Launcher)}.") from None
    try:
        which = OutputsFrom(outputs_from)
    except ValueError:
        raise BadInput(f"--outputs-from {outputs_from!r} is not known: choose rank0 or all.") from None
    return how, which

