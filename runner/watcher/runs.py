"""The run a watcher looks after: the newest run of the stack's pod, started from this machine, that has
not ended (this machine's run records, runner/train/run_record.py). A run that succeeded, failed, was
stopped, gave up, or was abandoned by Ctrl-C during a recovery is not watched."""

from __future__ import annotations

import json

from runner.paths import StatePaths
from runner.train import run_record
from runner.train.run_record import RunRecord
from runner.types import TargetKind

WATCHED = ("launching", "running", "detached")  # RunRecord.status of a run that may still train


def unfinished(paths: StatePaths) -> RunRecord | None:
    newest: RunRecord | None = None
    try:
        files = sorted(paths.runs_dir.glob("*.json"))
    except OSError:
        return None
    for f in files:
        try:
            record = RunRecord.from_json(json.loads(f.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if record.target != TargetKind.POD or record.status not in WATCHED:
            continue
        if newest is None or record.updated_at > newest.updated_at:
            newest = record
    return newest


def set_status(paths: StatePaths, record: RunRecord, status: str, exit_code: int | None = None) -> None:
    fresh = run_record.load(paths, record.run_id) or record
    fresh.status, fresh.exit_code = status, exit_code
    run_record.save(paths, fresh)


__all__ = ["WATCHED", "set_status", "unfinished"]
