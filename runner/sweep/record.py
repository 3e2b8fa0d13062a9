"""The sweep as this machine keeps it: <state dir>/<stack>/sweeps/<id>.json (0600, replaced atomically).
The driver rewrites it at every change; `runner sweep --status`/`--stop` read it from any terminal."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from runner.errors import UsageError
from runner.paths import StatePaths, write_private
from runner.timestamps import utc_now


class RunState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # never started: the sweep was stopped, or its budget reached

    @property
    def done(self) -> bool:
        return self not in (RunState.QUEUED, RunState.RUNNING)


@dataclass
class SweepRun:
    run_id: str
    values: dict[str, object]
    state: str = RunState.QUEUED.value
    pod: str | None = None
    exit_code: int | None = None


@dataclass
class SweepRecord:
    sweep_id: str
    config: str
    concurrency: int
    runs: list[SweepRun]
    budget_usd: float | None = None
    max_recoveries: int = 3
    stopped: str | None = None  # why no queued run starts any more (a stop, the budget)
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    def in_state(self, *states: RunState) -> list[SweepRun]:
        return [r for r in self.runs if r.state in {s.value for s in states}]


def sweeps_dir(paths: StatePaths) -> Path:
    return paths.stack_dir / "sweeps"


def save(paths: StatePaths, record: SweepRecord) -> None:
    record.updated_at = utc_now()
    write_private(sweeps_dir(paths) / f"{record.sweep_id}.json", json.dumps(asdict(record), indent=2) + "\n")


def load(paths: StatePaths, sweep_id: str | None) -> SweepRecord:
    """The sweep, or the newest one when sweep_id is None; UsageError when there is none."""
    folder = sweeps_dir(paths)
    if sweep_id is None:
        found = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        if not found:
            raise UsageError(f"no sweep was started on stack {paths.stack!r} from this machine")
        path = found[-1]
    else:
        path = folder / f"{sweep_id}.json"
    try:
        data = json.loads(path.read_text())
        runs = [SweepRun(**r) for r in data.pop("runs")]
        return SweepRecord(runs=runs, **data)
    except FileNotFoundError:
        raise UsageError(f"no sweep {sweep_id!r} on stack {paths.stack!r} on this machine") from None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise UsageError(f"the sweep record {path} is damaged ({e}); delete it") from None
