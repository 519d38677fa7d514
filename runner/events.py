"""What the runner tells its callers while it works (the command line prints them, the UI draws them)."""

from dataclasses import dataclass
from typing import Callable, Union

from runner.remote.status import Status


@dataclass(frozen=True)
class PhaseChanged:
    phase: str
    detail: str = ""


@dataclass(frozen=True)
class LogChunk:
    offset: int
    data: bytes


@dataclass(frozen=True)
class StatusChanged:
    status: Status


@dataclass(frozen=True)
class Progress:
    label: str
    bytes_done: int
    bytes_total: int
    files_total: int


@dataclass(frozen=True)
class Notice:
    text: str


Event = Union[PhaseChanged, LogChunk, StatusChanged, Progress, Notice]
EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """An EventSink for callers that want none."""
