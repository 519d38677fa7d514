"""A run's current state, folded from its journal record and the events of following it: what the
runs table and the run screen draw, and what the console printer (tui/console.py) prints from.
Pure: no I/O, no clock unless one is passed, so a test builds any view from typed events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from runner.cost import cost_so_far, epoch
from runner.events import Event, LogChunk, MetricPoint, Notice, PhaseChanged, Progress, StatusChanged, TelemetrySample
from runner.journal import RunRecord
from runner.remote.status import Status
from runner.remote.telemetry import Sample
from runner.states import ClientPhase, MachinePhase, Outcome, RunState, parse

HISTORY = 600  # metric points and telemetry samples kept per series (older ones are thinned out)
NOTICES = 20


@dataclass(frozen=True)
class Step:
    """One entry of the timeline: a client phase (uploading code) or a machine phase (training)."""

    phase: str
    at: str = ""  # UTC, as the journal and the status file write it; '' when not known
    on_machine: bool = False


@dataclass(frozen=True)
class Telemetry:
    """The last sample and a rolling window of the figures the sparklines draw."""

    last: Sample | None = None
    cpu: tuple[float, ...] = ()
    memory: tuple[float, ...] = ()  # percent used
    gpu: tuple[float, ...] = ()  # the first GPU's utilisation, percent
    gpu_memory: tuple[float, ...] = ()
    offset: int = 0  # where the next sample starts in telemetry.jsonl


@dataclass(frozen=True)
class RunView:
    run_id: str
    target: str
    state: str  # a RunState value
    created_at: str = ""
    machine: str = ""  # user@host:port while the run holds one
    accelerator: str = ""  # gcp/aws: T4, A10G:4, ...
    hourly_usd: float | None = None
    cost_usd: float | None = None  # so far, at most (runner/cost.py)
    started_at: str = ""  # first client phase (provisioning)
    ended_at: str = ""  # destroyed
    timeline: tuple[Step, ...] = ()
    machine_phase: str = ""  # status.json's phase, '' before the machine told
    outcome: str | None = None
    reason: str = ""
    exit_code: int | None = None
    status: Status | None = None
    log_offset: int = 0  # the end of the log shown so far
    metrics_offset: int = 0
    metric_step: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # the last value of each metric
    series: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)  # name -> (step, value)
    telemetry: Telemetry = field(default_factory=Telemetry)
    downloads: tuple[str, ...] = ()
    downloaded: bool = False  # the outputs were downloaded after the training finished
    progress: Progress | None = None
    notices: tuple[str, ...] = ()
    sweep: str = ""  # the sweep this run is a slot machine or a trial of ('' when none)
    borrowed_from: str = ""  # a trial: the slot run whose machine it trains on
    node_count: int = 1  # machines training together (a TPU pod slice's hosts count)
    nodes: tuple[str, ...] = ()  # a multi-node run's machines (user@host:port) in rank order while it holds them

    # -- what the screens ask --------------------------------------------------------------------
    @property
    def run_state(self) -> RunState | None:
        return parse(RunState, self.state)

    @property
    def holds_resources(self) -> bool:
        """Something of this run still exists (a machine, a stack, a server): it may be billing."""
        return self.state != RunState.DESTROYED

    @property
    def phase(self) -> str:
        """One word for the table: the machine's phase while it trains, else the run's state."""
        if self.state == RunState.STARTED and self.machine_phase and self.machine_phase != MachinePhase.FINISHED:
            return self.machine_phase
        if self.state in (RunState.FINISHED, RunState.STARTED) and self.outcome:
            return self.outcome
        return self.state

    @property
    def succeeded(self) -> bool:
        return self.outcome == Outcome.SUCCEEDED

    @property
    def loss(self) -> float | None:
        """The latest loss: a metric named `loss`, else the first one whose name ends in loss."""
        if "loss" in self.metrics:
            return self.metrics["loss"]
        for name in sorted(self.metrics):
            if name.endswith("loss"):
                return self.metrics[name]
        return None

    def elapsed_s(self, now: float) -> float | None:
        if not self.started_at:
            return None
        end = epoch(self.ended_at) if self.ended_at else now
        return max(0.0, end - epoch(self.started_at))

    # -- folding -----------------------------------------------------------------------------------
    @classmethod
    def from_record(cls, record: RunRecord, now: float | None = None) -> "RunView":
        return cls(run_id=record.run_id, target=record.spec.target, state=record.state).with_record(record, now)

    def with_record(self, record: RunRecord, now: float | None = None) -> "RunView":
        """This view with what the journal says now (the events' part is kept)."""
        machine = record.machine.address if record.machine and record.state != RunState.DESTROYED else ""
        cloud = record.spec.cloud
        ended = [at for phase, at in record.phases if phase == ClientPhase.DESTROYED]
        client = tuple(Step(p, at) for p, at in record.phases)
        on_machine = tuple(s for s in self.timeline if s.on_machine)
        return replace(
            self, state=record.state, created_at=record.created_at, machine=machine,
            accelerator=cloud.accelerator_text if cloud else "",
            hourly_usd=record.stack.hourly_price if record.stack else None, cost_usd=cost_so_far(record, now),
            started_at=record.phases[0][1] if record.phases else "",
            ended_at=ended[-1] if ended and record.state == RunState.DESTROYED else "",
            timeline=_merge(client, on_machine),
            outcome=record.outcome if record.outcome is not None else self._status_says("outcome", record),
            reason=record.reason or self._status_says("reason", record) or "",
            exit_code=record.exit_code if record.exit_code is not None else self._status_says("exit_code", record),
            downloads=tuple(record.downloads), downloaded=record.final_download,
            sweep=record.sweep, borrowed_from=record.borrowed_from,
            node_count=max(len(record.nodes), record.spec.nodes, 1),
            nodes=tuple(m.address for m in record.nodes) if machine and len(record.nodes) > 1 else (),
        )

    def apply(self, event: Event) -> "RunView":
        """This view once `event` has happened."""
        if isinstance(event, LogChunk):
            return replace(self, log_offset=max(self.log_offset, event.offset + len(event.data)))
        if isinstance(event, MetricPoint):
            return self._with_point(event)
        if isinstance(event, TelemetrySample):
            return replace(self, telemetry=_with_sample(self.telemetry, event))
        if isinstance(event, StatusChanged):
            return self._with_status(event.status)
        if isinstance(event, PhaseChanged):
            if any(s.phase == event.phase for s in self.timeline[-1:]):
                return self
            # A phase the status file will also bring (with its time) is the machine's; others are ours.
            machine = parse(MachinePhase, event.phase) is not None
            return replace(self, timeline=self.timeline + (Step(event.phase, "", machine),))
        if isinstance(event, Progress):
            return replace(self, progress=event)
        if isinstance(event, Notice):
            return replace(self, notices=(self.notices + (event.text,))[-NOTICES:])
        return self  # EngineLine: Pulumi's output is shown, not folded

    def _with_point(self, p: MetricPoint) -> "RunView":
        series = dict(self.series)
        for name, value in p.values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                series[name] = _thin(series.get(name, ()) + ((p.step, float(value)),))
        return replace(self, metrics_offset=max(self.metrics_offset, p.end), metric_step=p.step,
                       metrics={**self.metrics, **p.values}, series=series)

    def _with_status(self, status: Status) -> "RunView":
        client = tuple(s for s in self.timeline if not s.on_machine)
        machine = tuple(Step(p, at, True) for p, at in status.phases)
        # The machine's status speaks for the current attempt (a run started again has no outcome yet).
        return replace(self, status=status, machine_phase=status.phase, timeline=_merge(client, machine),
                       outcome=status.outcome, reason=status.reason, exit_code=status.exit_code)

    def _status_says(self, name: str, record: RunRecord):  # type: ignore[no-untyped-def]
        """What the machine told of the attempt the journal has not recorded the end of yet."""
        if self.status is None or record.state not in (RunState.STARTED, RunState.FINISHED):
            return None
        return getattr(self.status, name)


def fold(view: RunView, events: list[Event]) -> RunView:
    for event in events:
        view = view.apply(event)
    return view


def _merge(a: tuple[Step, ...], b: tuple[Step, ...]) -> tuple[Step, ...]:
    """Both timelines in time order (steps without a time keep their place after the timed ones)."""
    timed = sorted((s for s in a + b if s.at), key=lambda s: s.at)
    return tuple(timed) + tuple(s for s in a + b if not s.at)


def _thin(points: tuple, limit: int = HISTORY) -> tuple:
    """At most `limit` points: every other of the older half goes when full, so the whole curve stays."""
    if len(points) <= limit:
        return points
    half = len(points) // 2
    return points[:half:2] + points[half:]


def _pct(used: float | None, total: float | None) -> float | None:
    return None if used is None or not total else 100.0 * used / total


def _with_sample(t: Telemetry, event: TelemetrySample) -> Telemetry:
    s = event.sample
    gpu = s.gpus[0] if s.gpus else None

    def add(series: tuple[float, ...], value: float | None) -> tuple[float, ...]:
        return series if value is None else (series + (float(value),))[-HISTORY:]

    return Telemetry(
        last=s, cpu=add(t.cpu, s.cpu_percent), memory=add(t.memory, _pct(s.memory_used_mb, s.memory_total_mb)),
        gpu=add(t.gpu, gpu.utilization_percent if gpu else None),
        gpu_memory=add(t.gpu_memory, _pct(gpu.memory_used_mb, gpu.memory_total_mb) if gpu else None),
        offset=max(t.offset, event.end),
    )
