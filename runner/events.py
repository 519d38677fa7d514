"""What the runner tells its callers while it works (the command line prints them, the UI draws them).

Every event carries the id of the run it is about (`run_id`, filled in by the lifecycle), so one
sink can serve many runs; those that come in floods (`Progress`, `TelemetrySample`, `StatusChanged`)
say `replaceable`: only the newest of a run matters. Most events come from the event loop's thread;
`EngineLine` (Pulumi's output) and the `Progress` of bucket transfers come from worker threads, so a UI must hand them to its own thread (Textual:
`call_from_thread` / `post_message`)."""

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Union

from runner.remote.status import Status
from runner.remote.telemetry import Sample


@dataclass(frozen=True)
class PhaseChanged:
    phase: str
    detail: str = ""
    run_id: str = field(default="", compare=False, kw_only=True)  # set by the lifecycle: whose event


@dataclass(frozen=True)
class LogChunk:
    offset: int
    data: bytes
    run_id: str = field(default="", compare=False, kw_only=True)  # set by the lifecycle: whose event


@dataclass(frozen=True)
class StatusChanged:
    status: Status
    run_id: str = field(default="", compare=False, kw_only=True)  # set by the lifecycle: whose event
    replaceable: ClassVar[bool] = True  # a flood: a UI may keep only the newest of a run


@dataclass(frozen=True)
class MetricPoint:
    """One line of the training's logs/metrics.jsonl (written by trainrig_helpers.log_metrics)."""

    step: int
    wall_time: float
    values: dict[str, float]  # metric name -> value (NaN and infinities included)
    offset: int  # where its line starts in the file
    end: int  # where the next line starts: follow again from here to see what came after it
    run_id: str = field(default="", compare=False, kw_only=True)  # set by the lifecycle: whose event


@dataclass(frozen=True)
class TelemetrySample:
    """One line of the supervisor's logs/telemetry.jsonl."""

    sample: Sample
    offset: int
    end: int
    run_id: str = field(default="", compare=False, kw_only=True)  # set by the lifecycle: whose event
    replaceable: ClassVar[bool] = True  # a flood: a UI may keep only the newest of a run


@dataclass(frozen=True)
class Progress:
    label: str
    bytes_done: int
    bytes_total: int
    files_total: int
    run_id: str = field(default="", compare=False, kw_only=True)  # set by the lifecycle: whose event
    replaceable: ClassVar[bool] = True  # a flood: a UI may keep only the newest of a run


@dataclass(frozen=True)
class EngineLine:
    """One line of Pulumi's own output while it creates or destroys a run's stack (a UI shows them
    in their own panel; the command line prints them indented)."""

    text: str
    run_id: str = field(default="", compare=False, kw_only=True)  # set by the lifecycle: whose event


@dataclass(frozen=True)
class Notice:
    text: str
    run_id: str = field(default="", compare=False, kw_only=True)  # set by the lifecycle: whose event


Event = Union[PhaseChanged, LogChunk, StatusChanged, MetricPoint, TelemetrySample, Progress, EngineLine, Notice]
EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """An EventSink for callers that want none."""
