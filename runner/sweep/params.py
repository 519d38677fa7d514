"""`--param` parsing: `lr=log:1e-4..1e-1` (log-uniform floats), `dropout=0.1..0.5` (floats),
`layers=2..6` (integers), `batch=32,64` (a choice). Bad input is one sentence (BadInput, exit 2)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum

from runner.errors import BadInput

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ENV_PREFIX = "TRAINRIG_PARAM_"
Value = int | float | str


class ParamKind(str, Enum):
    LOG = "log"  # floats, sampled on a log scale
    FLOAT = "float"
    INT = "int"
    CHOICE = "choice"


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Value, ...] = ()

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def distribution(self):  # type: ignore[no-untyped-def]
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == ParamKind.CHOICE:
            return CategoricalDistribution(self.choices)
        if self.kind == ParamKind.INT:
            return IntDistribution(int(self.low), int(self.high))
        return FloatDistribution(self.low, self.high, log=self.kind == ParamKind.LOG)

    def to_text(self) -> str:
        """The `--param` text this parameter was parsed from (kept in the sweep's file for --resume)."""
        if self.kind == ParamKind.CHOICE:
            return f"{self.name}={','.join(str(c) for c in self.choices)}"
        low, high = (int(self.low), int(self.high)) if self.kind == ParamKind.INT else (self.low, self.high)
        return f"{self.name}={'log:' if self.kind == ParamKind.LOG else ''}{low!r}..{high!r}"


def _bad(text: str, why: str) -> BadInput:
    return BadInput(f"--param {text!r} {why}: write NAME=log:LOW..HIGH, NAME=LOW..HIGH or NAME=A,B,C "
                    "(e.g. --param lr=log:1e-4..1e-1 --param batch=32,64).")


def _number(s: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(s)
        except ValueError:
            pass
    return None


def _choice(s: str) -> Value:
    n = _number(s)
    return s if n is None else n


def parse_param(text: str) -> Param:
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not rest.strip():
        raise _bad(text, "has no values")
    if not _NAME.match(name):
        raise _bad(text, f"has the name {name!r}, which is not a letter followed by letters, digits or _")
    rest = rest.strip()
    log = rest.startswith("log:")
    body = rest[4:] if log else rest
    if ".." in body:
        low_s, _, high_s = body.partition("..")
        low, high = _number(low_s.strip()), _number(high_s.strip())
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
            raise _bad(text, "has a range whose ends are not both finite numbers")  # inf, nan: Optuna cannot sample it
        if not low < high:
            raise _bad(text, f"has a range whose low end ({low_s.strip()}) is not below its high end ({high_s.strip()})")
        if log and low <= 0:
            raise _bad(text, "has a log range that does not start above 0")
        if log:
            return Param(name, ParamKind.LOG, float(low), float(high))
        if isinstance(low, int) and isinstance(high, int):
            return Param(name, ParamKind.INT, low, high)
        return Param(name, ParamKind.FLOAT, float(low), float(high))
    if log:
        raise _bad(text, "says log: but gives no LOW..HIGH range")
    parts = [p.strip() for p in body.split(",")]
    if any(not p for p in parts):
        raise _bad(text, "has an empty value in its list")
    choices = tuple(_choice(p) for p in parts)
    if len(set(choices)) != len(choices):
        raise _bad(text, "lists a value twice")
    return Param(name, ParamKind.CHOICE, choices=choices)


def parse_params(texts: list[str]) -> tuple[Param, ...]:
    if not texts:
        raise BadInput("a sweep needs at least one --param to vary, e.g. --param lr=log:1e-4..1e-1.")
    params = tuple(parse_param(t) for t in texts)
    seen: set[str] = set()
    for p in params:
        if p.env_name in seen:
            raise BadInput(f"--param {p.name} is given twice (names differing only in case count as one): keep one.")
        seen.add(p.env_name)
    return params


def trial_arguments(values: dict[str, Value]) -> tuple[str, ...]:
    """`--name value` for each parameter, appended to the entry's command line."""
    out: list[str] = []
    for name, v in values.items():
        out += [f"--{name}", repr(v) if isinstance(v, float) else str(v)]
    return tuple(out)


def trial_env(values: dict[str, Value]) -> tuple[tuple[str, str], ...]:
    return tuple((ENV_PREFIX + name.upper(), repr(v) if isinstance(v, float) else str(v)) for name, v in values.items())


class Direction(str, Enum):
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True)
class Objective:
    metric: str  # a name the training logs with trainrig_helpers.log_metrics
    direction: Direction

    def optuna_direction(self) -> str:
        return "minimize" if self.direction == Direction.MIN else "maximize"

    def __str__(self) -> str:
        return f"{self.metric}:{self.direction.value}"


def parse_objective(text: str) -> Objective:
    metric, _, how = text.partition(":")
    if not metric.strip() or how.strip() not in ("min", "max"):
        raise BadInput(f"--objective {text!r} is not valid: write METRIC:min or METRIC:max with a metric the training "
                       "logs (trainrig_helpers.log_metrics), e.g. --objective val_loss:min.")
    return Objective(metric.strip(), Direction(how.strip()))
