"""`Engine.release_tpu`: a finished TPU run's node deleted alone, the rest of its stack kept.

No Pulumi CLI can run here, so the stack's state is what the run's real program declares under
Pulumi's mocks (URNs, parents and dependencies as the engine records them), exported the way
`pulumi stack export` shapes it; `RecordedStack` stands in for the CLI below the Automation API and
checks every call against the Automation API's own signatures."""

from __future__ import annotations

import inspect

import pulumi
import pytest
from pulumi import automation as auto
from pulumi.runtime.mocks import MockMonitor

from infra import program
from infra.engine import TPU_NODE_TYPE, Engine
from infra.errors import StackBusy
from tests.infra.components.harness import GCP_T4, GCP_TPU, RecordingMocks, ensure_event_loop, make_inputs

STACK_URN = "urn:pulumi:yolo-coco::trainrig::pulumi:pulumi:Stack::trainrig-yolo-coco"


class DependencyMonitor(MockMonitor):
    """Pulumi's mock monitor, keeping what the engine writes into a stack's state for each resource."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.state: list[dict] = []

    def RegisterResource(self, request):  # type: ignore[no-untyped-def]
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            deps = set(request.dependencies) | {u for d in request.propertyDependencies.values() for u in d.urns}
            self.state.append({"urn": response.urn, "type": request.type, "custom": request.custom,
                               "parent": request.parent or STACK_URN, "dependencies": sorted(deps),
                               **({"deletedWith": request.deletedWith} if request.deletedWith else {})})
        return response


def stack_state(offer) -> list[dict]:  # type: ignore[no-untyped-def]
    """The resources of a run's stack as `pulumi stack export` lists them, from the real program."""
    ensure_event_loop()
    mocks = RecordingMocks()
    monitor = DependencyMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="trainrig", stack="yolo-coco", preview=False, monitor=monitor)

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        machine = program.build(make_inputs(offer))
        return machine.address

    run()
    return [{"urn": STACK_URN, "type": "pulumi:pulumi:Stack", "custom": False},
            {"urn": "urn:pulumi:yolo-coco::trainrig::pulumi:providers:gcp::default_9_0_0", "type": "pulumi:providers:gcp",
             "custom": True}, *monitor.state]


class RecordedStack:
    """The stack below the Automation API: its exported state, and each command run on it."""

    def __init__(self, resources: list[dict], fail_with: Exception | None = None):
        self.resources = resources
        self.calls: list[tuple[str, dict]] = []
        self.fail_with = fail_with

    def export_stack(self) -> auto.Deployment:
        return auto.Deployment(version=3, deployment={"resources": [dict(r) for r in self.resources]})

    def destroy(self, **kwargs: object) -> auto.DestroyResult:
        inspect.signature(auto.Stack.destroy).bind(self, **kwargs)  # a misspelt option fails here as it would there
        self.calls.append(("destroy", kwargs))
        if self.fail_with is not None:
            raise self.fail_with
        targets = kwargs.get("target") or [r["urn"] for r in self.resources]
        # `pulumi destroy --target` refuses a target others depend on, unless --target-dependents.
        for r in self.resources:
            if r["urn"] not in targets and set(r.get("dependencies", [])) & set(targets) and not kwargs.get("target_dependents"):
                raise auto.errors.CommandError(auto.CommandResult("", f"error: {r['urn']} depends on a target", 255))
        self.resources = [r for r in self.resources if r["urn"] not in targets]
        return auto.DestroyResult(stdout="", stderr="", summary=None)  # type: ignore[arg-type]

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        def other(**kwargs: object) -> None:
            self.calls.append((name, kwargs))

        return other


def offline_engine(tmp_path, stack: RecordedStack) -> Engine:  # type: ignore[no-untyped-def]
    engine = Engine(tmp_path, tmp_path / "state")
    engine._stack = lambda run_id, create, missing_ok=False: stack  # type: ignore[method-assign]
    return engine


def test_release_deletes_the_tpu_node_alone_and_keeps_the_rest_of_the_stack(tmp_path):
    state = stack_state(GCP_TPU)
    nodes = [r["urn"] for r in state if r["type"] == TPU_NODE_TYPE]
    assert len(nodes) == 1 and nodes[0].endswith("::trainrig:gcp:TpuMachine$gcp:tpu/v2Vm:V2Vm::trainrig-yolo-coco")  # the run component's
    kept = [r["urn"] for r in state if r["type"] != TPU_NODE_TYPE]
    assert any("gcp:storage/bucket:Bucket" in u for u in kept) and any("serviceaccount" in u for u in kept)
    assert any("gcp:compute/network:Network" in u for u in kept)
    stack = RecordedStack(state)
    lines: list[str] = []
    engine = offline_engine(tmp_path, stack)
    engine.on_output = lines.append

    assert engine.release_tpu("yolo-coco") == nodes
    assert [name for name, _ in stack.calls] == ["destroy"]  # no up, no refresh, no whole-stack destroy
    call = stack.calls[0][1]
    assert call["target"] == nodes and call["target_dependents"] is False
    assert call["on_output"] == lines.append
    assert [r["urn"] for r in stack.resources] == kept

    # Again (a retry after a crash, or a second follower): nothing left to delete, nothing run.
    assert engine.release_tpu("yolo-coco") == []
    assert len(stack.calls) == 1


def test_a_gpu_stack_has_no_tpu_node_to_release(tmp_path):
    state = stack_state(GCP_T4)
    stack = RecordedStack(state)
    assert offline_engine(tmp_path, stack).release_tpu("yolo-coco") == []
    assert stack.calls == [] and stack.resources == state


def test_a_failed_release_is_the_engines_own_error(tmp_path):
    busy = auto.errors.ConcurrentUpdateError(auto.CommandResult("", "error: the stack is currently locked by 1 lock(s)", 255))
    stack = RecordedStack(stack_state(GCP_TPU), fail_with=busy)
    with pytest.raises(StackBusy) as e:
        offline_engine(tmp_path, stack).release_tpu("yolo-coco")
    assert e.value.__cause__ is busy
