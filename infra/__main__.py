"""The Pulumi program (`Pulumi.yaml`: `main: infra/`): one stack per run. It only reads the run's
stack config (stacks/Pulumi.<run>.yaml, written by `trainrig up`) and builds that run's component."""

import pulumi

from infra.program import build
from infra.stack_config import from_config
from infra.stack_inputs import inputs_for


def _config(key: str) -> object:
    namespace, _, name = key.partition(":")
    return pulumi.Config(namespace).get(name)


spec, keys = from_config(_config)
build(inputs_for(spec, keys))
