"""The whole Pulumi program, `infra/__main__.py`, as `pulumi up -s <run>` runs it: from a stack config
file written by trainrig (through Pulumi's config, where every value is text), to the run's component
and the five stack outputs, under Pulumi's own mocks (no engine, no cloud)."""

from __future__ import annotations

import json
import runpy

import asyncssh
import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockMonitor

from infra.cloud import CloudOptions
from infra.spec import build_spec
from infra.stack_config import MachineKeys, write
from tests.infra.components.harness import ROOT_DIR, RecordingMocks, ensure_event_loop, unwrap

DIGITS = str(ROOT_DIR / "examples" / "digits")


def _keys(tmp_path) -> tuple[MachineKeys, str, str]:  # type: ignore[no-untyped-def]
    client = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    host = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "host_key").write_bytes(host.export_private_key())
    (tmp_path / "host_key.pub").write_text(host.export_public_key().decode())
    return MachineKeys(client, str(tmp_path / "host_key")), client, host.export_private_key().decode()


def _as_pulumi_config(path) -> str:  # type: ignore[no-untyped-def]
    config = yaml.safe_load(path.read_text())["config"]
    text = {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in config.items()}
    return json.dumps(text)


def _run_program(monkeypatch, stack_file, run_id):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PULUMI_CONFIG", _as_pulumi_config(stack_file))
    exported: dict[str, object] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))
    ensure_event_loop()
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="trainrig", stack=run_id, preview=False, monitor=MockMonitor(mocks))
    values: dict[str, object] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        # As the language host runs `main: infra/`: the folder, with it first on sys.path.
        runpy.run_path(str(ROOT_DIR / "infra"), run_name="__main__")
        return pulumi.Output.all(**exported).apply(values.update)

    program()
    return mocks.declared, values


@pytest.mark.parametrize("target, options, machine_type, where", [
    ("gcp", CloudOptions(accelerator="T4:2", project="my-proj", zone="us-central1-b", ssh_from="203.0.113.7/32", spot=True),
     "n1-standard-16", "us-central1-b"),
    ("gcp", CloudOptions(accelerator="v5litepod-8", project="my-proj", ssh_from="203.0.113.7/32"), "v5litepod-8", None),
    ("aws", CloudOptions(accelerator="A10G", region="us-east-1", ssh_from="198.51.100.0/24"), "g5.xlarge", "us-east-1"),
])
def test_the_program_builds_the_run_described_by_its_stack_config(monkeypatch, tmp_path, target, options, machine_type, where):
    spec = build_spec(code=DIGITS, code_name="digits", dataset_name=f"{target}-main", target=target, cloud=options,
                      max_runtime_s=2 * 3600)
    keys, client_public, host_private = _keys(tmp_path)
    stack_file = write(tmp_path / "stacks", spec, keys)
    declared, outputs = _run_program(monkeypatch, stack_file, spec.run_id)

    machine = next(d for d in declared if d.type in ("gcp:compute/instance:Instance", "gcp:tpu/v2Vm:V2Vm", "aws:ec2/instance:Instance"))
    plain = unwrap(machine.inputs)
    assert (plain.get("machineType") or plain.get("acceleratorType") or plain.get("instanceType")) == machine_type
    text = json.dumps(plain)
    assert host_private.strip().splitlines()[1] in text  # the host key reaches the machine's boot script
    assert "+180" in text  # failsafe power-off: 2 h max runtime + 1 h margin, in minutes
    if target == "gcp":
        assert client_public in plain["metadata"]["ssh-keys"]
        assert plain["labels"]["trainrig-run"] == spec.run_id
        if where:
            assert plain["zone"] == where
            assert plain["scheduling"]["provisioningModel"] == "SPOT"
    else:
        key_pair = next(d for d in declared if d.type == "aws:ec2/keyPair:KeyPair")
        assert unwrap(key_pair.inputs)["publicKey"].strip() == client_public
    assert set(outputs) == {"address", "sshUser", "hostKey", "outputBucket", "hourlyPrice"}
    assert outputs["hostKey"] == (tmp_path / "host_key.pub").read_text().strip()
    assert outputs["sshUser"] == ("trainrig" if target == "gcp" else "ubuntu")
    assert float(outputs["hourlyPrice"]) > 0  # type: ignore[arg-type]
