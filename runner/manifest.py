"""run.json: what a downloaded run folder holds and how it was made."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from runner.journal import RunRecord, utc_now
from runner.metrics import read_file, summarize
from runner.remote.listing import shown
from runner.remote.status import Status
from runner.transfer import TransferResult

VERSION = "0.1.0"


def write_manifest(
    folder: Path, record: RunRecord, status: Status | None, outputs: TransferResult, logs: TransferResult
) -> Path:
    s = status or Status(run_id=record.run_id)
    phases = sorted([*record.phases, *s.phases], key=lambda p: p[1])
    manifest = {
        "trainrig_version": VERSION,
        "run_id": record.run_id,
        "spec": record.spec.to_dict(),
        "target": record.spec.target,
        "machine_address": record.machine.address if record.machine else None,
        "outcome": s.outcome,
        "reason": s.reason,
        "warning": s.warning,
        "exit_code": s.exit_code,
        "phases": [{"phase": p, "at": at} for p, at in phases],
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "code_hash": s.code_hash,
        "dataset_hash": s.dataset_hash,
        "requirements": s.requirements,
        "frozen_requirements": s.frozen_requirements,
        "venv_reused": s.venv_reused,
        "install_tail": s.install_tail,
        "machine": asdict(s.machine),
        "last_sync_at": s.last_sync_at,
        # Machines taken away under the training and replaced (each lost attempt, with its cost).
        "max_restarts": record.max_restarts,
        "restarts": [asdict(r) for r in record.restarts],
        "preemption": s.preemption,
        # bytes: the folder's size; bytes_sent: what this download carried (less when it resumed one cut off).
        "outputs": {"files": outputs.files_total, "bytes": outputs.bytes_total or outputs.bytes_sent,
                    "bytes_sent": outputs.bytes_sent, "tree_hash": outputs.tree_hash, "left_out": _left_out(outputs)},
        "logs": {"files": logs.files_total, "bytes": logs.bytes_total or logs.bytes_sent, "bytes_sent": logs.bytes_sent,
                 "left_out": _left_out(logs)},
        # Last and best value of each metric the training logged (logs/metrics.jsonl, all attempts).
        "metrics": {name: m.to_dict() for name, m in summarize(read_file(folder / "logs" / "metrics.jsonl")).items()},
        "downloaded_at": utc_now(),
    }
    path = folder / "run.json"
    path.write_text(json.dumps(_finite(manifest), indent=2, allow_nan=False) + "\n")
    return path


def _left_out(r: TransferResult) -> list[dict[str, str]]:
    """Files of the machine's folder that were not downloaded, and why (names shown \\x-escaped
    where they are no valid UTF-8: run.json stays strict UTF-8 JSON)."""
    return [{"path": shown(p), "why": why} for p, why in r.left_out]


def _finite(value):  # type: ignore[no-untyped-def]
    """Strict JSON (jq, other languages): a NaN or infinite metric is written as metrics.jsonl
    writes it, as the string "NaN", "Infinity" or "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
