"""The providers' own input rules, written from their documentation (each rule names its source), checked
over every resource a stack declared under Pulumi's mocks. The mocks accept any input; the real GCP and
AWS APIs refuse these at `pulumi up`, often after half the stack exists. `violations()` returns one
sentence per refused input, so a test shows a stack passes and each rule catches its bad case.
The rules themselves: provider_rules_gcp.py and provider_rules_aws.py.
"""

from __future__ import annotations

from infra.stack_inputs import StackInputs
from tests.infra.components.harness import Declared
from tests.infra.components.provider_rules_aws import AWS_RULES
from tests.infra.components.provider_rules_gcp import GCP_RULES

RULES = (*GCP_RULES, *AWS_RULES)


def violations(declared: list[Declared], inputs: StackInputs) -> list[str]:
    return [problem for rule in RULES for problem in rule(declared, inputs)]
