"""The sweep as this machine keeps it: <state dir>/<stack>/sweeps/<id>.json (0600, replaced atomically).
The driver rewrites it at every change, a watcher when it starts a queued run or learns how one ended
(runner/sweep/unattended.py); `runner sweep --status`/`--stop` read it from any terminal. Who may decide
for the sweep is runner/sweep/lock.py's."""

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
    ENDED = "ended"  # ended with nobody attached, its result not known here yet (runner/sweep/progress.py)

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


def ids(paths: StatePaths) -> list[str]:
    """Every sweep this machine keeps for the stack, oldest first."""
    folder = sweeps_dir(paths)
    found = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return [p.stem for p in found]


def load(paths: StatePaths, sweep_id: str | None) -> SweepRecord:
    """The sweep, or the newest one when sweep_id is None; UsageError when there is none."""
    if sweep_id is None:
        found = ids(paths)
        if not found:
            raise UsageError(f"no sweep was started on stack {paths.stack!r} from this machine")
        sweep_id = found[-1]
    path = sweeps_dir(paths) / f"{sweep_id}.json"
    try:
        data = json.loads(path.read_text())
        runs = [SweepRun(**r) for r in data.pop("runs")]
        return SweepRecord(runs=runs, **data)
    except FileNotFoundError:
        raise UsageError(f"no sweep {sweep_id!r} on stack {paths.stack!r} on this machine") from None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise UsageError(f"the sweep record {path} is damaged ({e}); delete it") from None
