"""The app's own messages: small dataclasses; the floods (a run's events) can be replaced."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from runner.events import Event, LogChunk, Progress
from runner.journal import RunRecord


@dataclass
class RunEvent(Message):
    """An event of one run, from its follower or one of its actions (perhaps from another thread)."""

    run_id: str
    event: Event

    def can_replace(self, message: Message) -> bool:
        """A transfer's progress still queued is superseded by the next one (every other event counts)."""
        return (isinstance(message, RunEvent) and message.run_id == self.run_id
                and isinstance(self.event, Progress) and isinstance(message.event, Progress)
                and message.event.label == self.event.label)


@dataclass
class JournalRead(Message):
    """Every run's record, read again (a run started from the command line appears this way)."""

    records: list[RunRecord]


@dataclass
class StacksRead(Message):
    """Stacks in the Pulumi backend with no live run in this journal (they may hold cloud resources)."""

    names: list[str]


@dataclass
class OpenRun(Message):
    run_id: str


@dataclass
class RunAction(Message):
    """A person asked for an action on a run: start, stop, download, destroy, shell, follow."""

    run_id: str
    action: str


@dataclass
class NodeLog(Message):
    """A piece of the node log the run screen shows (its follower's `token`: older followers' are dropped)."""

    token: int
    chunk: LogChunk
