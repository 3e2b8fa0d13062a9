"""The stack's current run as the volume records it, for a watcher on a machine that did not start it
(an always-on server running `runner watch`): the run id and attempt from .runner/state.json, its limits
and auto-resume from runs/<id>/spec.json, and whether .runner/hold.json holds it.

Read over SSH while the pod runs (at most every REFRESH_S, and whenever the pod started again), through
S3 while it is stopped when S3 keys are set, and kept in <state dir>/<stack>/watch_run.json: after a
preemption the pod cannot be asked, so what it said last is what the watcher knows. Everything read is
data from the pod: checked against the contract's types, never run or used as a path.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from remote.podside.contract import (
    DEFAULT_MAX_RECOVERIES,
    RUN_ID_RE,
    AttemptState,
    SpecKey,
    StateKey,
    is_held,
    parse_json_object,
)
from runner.errors import RunnerError
from runner.paths import write_private
from runner.settings import Settings

REFRESH_S = 300.0
_UNFINISHED = (AttemptState.PREEMPTED.value, AttemptState.RUNNING.value, AttemptState.SETUP.value)


@dataclass(frozen=True)
class VolumeRun:
    run_id: str
    attempt: int | None
    state: str | None  # AttemptState when last read (running while the pod ran)
    checkpoint: str | None  # the newest complete checkpoint the state names
    max_recoveries: int
    budget_usd: float | None
    auto_resume: bool
    held: bool
    pod_started_at: str | None  # the pod start it was read in
    read_at: float
    exit_code: int | None = None  # training's, once the attempt ended

    @property
    def unfinished(self) -> bool:
        return self.state in _UNFINISHED and not self.held

    @property
    def recoveries_done(self) -> int:
        return max((self.attempt or 1) - 1, 0)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def from_files(
    state: dict | None, spec: dict | None, hold: dict | None, *, pod_started_at: str | None
) -> VolumeRun | None:
    run_id = (state or {}).get(StateKey.RUN_ID)
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        return None
    assert state is not None
    spec = spec if spec is not None and spec.get(SpecKey.RUN_ID) == run_id else {}
    attempt = _int(state.get(StateKey.ATTEMPT))
    what = state.get(StateKey.STATE)
    limit = _int(spec.get(SpecKey.MAX_RECOVERIES))
    checkpoint = state.get(StateKey.LAST_CHECKPOINT)
    return VolumeRun(
        run_id=run_id,
        attempt=attempt,
        state=what if isinstance(what, str) else None,
        checkpoint=checkpoint if isinstance(checkpoint, str) else None,
        max_recoveries=limit if limit is not None and limit >= 0 else DEFAULT_MAX_RECOVERIES,
        budget_usd=_num(spec.get(SpecKey.BUDGET_USD)),
        auto_resume=spec.get(SpecKey.AUTO_RESUME) is not False and bool(spec),
        held=is_held(hold, run_id, attempt),
        pod_started_at=pod_started_at,
        read_at=time.time(),
        exit_code=_int(state.get(StateKey.EXIT_CODE)),
    )


def cache_path(settings: Settings) -> Path:
    return settings.paths.pod_dir / "watch_run.json"


def cached(settings: Settings) -> VolumeRun | None:
    try:
        data = json.loads(cache_path(settings).read_text())
        return VolumeRun(**data)
    except (OSError, ValueError, TypeError):
        return None


def read(settings: Settings, outputs, *, pod_started_at: str | None) -> VolumeRun | None:
    """Read the volume now (SSH or S3) and keep what it said; None when it cannot be read or names no run.
    Raises RunnerError only for settings errors; a failed read is None (the cache stays)."""
    from runner.volume.volume_files import VolumeFiles

    paths = outputs.volume_paths
    try:
        with VolumeFiles.open(settings, outputs) as files:
            if files.how is None:
                return None
            state = parse_json_object(files.read(paths.state_file))
            run_id = (state or {}).get(StateKey.RUN_ID)
            spec = hold = None
            if isinstance(run_id, str) and RUN_ID_RE.match(run_id):
                spec = parse_json_object(files.read(paths.spec_file(run_id)))
                hold = parse_json_object(files.read(paths.hold_file))
    except RunnerError:
        return None
    found = from_files(state, spec, hold, pod_started_at=pod_started_at)
    if found is not None:
        write_private(cache_path(settings), json.dumps(asdict(found)) + "\n")
    return found


def result_of(settings: Settings, outputs, run_id: str) -> tuple[str, int | None] | None:
    """How a run of this machine ended, as the volume says now (through S3: its pod has stopped), or None
    (S3 unavailable, or the pod's state names another run or no end)."""
    from runner.companions.status_seen import ENDED

    found = read(settings, outputs, pod_started_at=None)
    if found is None or found.run_id != run_id or found.state not in ENDED:
        return None
    return found.state, found.exit_code


def forget(settings: Settings, run_id: str) -> None:
    """The watcher is done with this run (it gave up, or it was stopped on purpose): not watched again
    until the volume names another run or another attempt."""
    last = cached(settings)
    if last is not None and last.run_id == run_id:
        write_private(cache_path(settings), json.dumps(asdict(last) | {"state": "given-up"}) + "\n")


def known(settings: Settings, outputs, *, pod_up: bool, pod_started_at: str | None) -> VolumeRun | None:
    """What the watcher knows of the current run: fresh from the pod while it runs (when the cache is old
    or from an earlier start), else the cache, else (pod stopped) what S3 can read."""
    last = cached(settings)
    if pod_up:
        stale = last is None or last.pod_started_at != pod_started_at or time.time() - last.read_at > REFRESH_S
        return (read(settings, outputs, pod_started_at=pod_started_at) or last) if stale else last
    if last is not None:
        return last
    return read(settings, outputs, pod_started_at=None)


__all__ = ["REFRESH_S", "VolumeRun", "cached", "forget", "from_files", "known", "read", "result_of"]
