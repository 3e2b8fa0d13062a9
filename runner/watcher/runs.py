"""The run a watcher looks after, as one value (WatchedRun), from one of two places:

- this machine's records (runner/train/run_record.py): the newest run of the stack's pod started here
  that has not ended (launching, running or detached); its limits are the ones `runner train` set;
- else the volume (volume_run.py), for a watcher on a machine that did not start the run: the run
  state.json names, with the limits of its spec; only the pod's own start can relaunch it then.
A run that succeeded, failed, stalled, was stopped, gave up, or was abandoned by Ctrl-C during a recovery
is not watched.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from runner.paths import StatePaths
from runner.settings import Settings
from runner.train import run_record
from runner.train.run_record import RunRecord
from runner.types import TargetKind

WATCHED = ("launching", "running", "detached")  # RunRecord.status of a run that may still train


@dataclass(frozen=True)
class WatchedRun:
    run_id: str
    attempt: int | None
    max_recoveries: int | None
    budget_usd: float | None
    recoveries_done: int
    step: int | None
    checkpoint: str | None
    cost_usd: float | None
    record: RunRecord | None  # this machine's record (None: known from the volume only)
    auto_resume: bool  # the pod's start relaunches it (its spec says so; unknown for an old run: True)

    @property
    def relaunchable(self) -> bool:
        """Someone can relaunch it once the pod is back: this machine (its config), or the pod's own start."""
        return self.record is not None or self.auto_resume

    @property
    def resume_command(self) -> str:
        config = self.record.config if self.record is not None else "<its config>"
        return shlex.join(["python", "-m", "runner", "train", "--config", config, "--run-id", self.run_id])


def unfinished(paths: StatePaths, pod: str = "") -> RunRecord | None:
    """The newest unfinished run of this machine's on the pod (pod: its name in a stack of several)."""
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
        if record.target != TargetKind.POD or record.status not in WATCHED or (record.pod or "") != pod:
            continue
        if newest is None or record.updated_at > newest.updated_at:
            newest = record
    return newest


def of_record(record: RunRecord) -> WatchedRun:
    last = record.attempts[-1] if record.attempts else None
    return WatchedRun(
        run_id=record.run_id,
        attempt=last.attempt if last else None,
        max_recoveries=record.max_recoveries,
        budget_usd=record.budget_usd,
        recoveries_done=record.recoveries or 0,
        step=last.last_step if last else None,
        checkpoint=record.last_checkpoint,
        cost_usd=record.estimated_cost_usd,
        record=record,
        auto_resume=True,
    )


def watched(settings: Settings, target, local: RunRecord | None, seen) -> WatchedRun | None:
    """The run to look after: this machine's, else the volume's unfinished one (None: nothing to watch)."""
    if local is not None:
        return of_record(local)
    from runner.watcher import volume_run

    assert target.outputs is not None
    pod = seen.pod if seen is not None else None
    found = volume_run.known(
        settings,
        target.outputs,
        pod_up=seen is not None and seen.state.up,
        pod_started_at=pod.started_at if pod else None,
    )
    if found is None or not found.unfinished:
        return None
    return WatchedRun(
        run_id=found.run_id,
        attempt=found.attempt,
        max_recoveries=found.max_recoveries,
        budget_usd=found.budget_usd,
        recoveries_done=found.recoveries_done,
        step=None,
        checkpoint=found.checkpoint,
        cost_usd=None,
        record=None,
        auto_resume=found.auto_resume,
    )


def stopped_result(settings: Settings, outputs, run: WatchedRun) -> tuple[str, int | None]:
    """A run whose pod stopped, not preempted: its result when the volume can be read without the pod
    (S3 keys: a detached run that ended and stopped its pod), else "stopped" (not known here)."""
    from runner.watcher import volume_run

    if run.record is not None:
        found = volume_run.result_of(settings, outputs, run.run_id)
        if found is not None:
            return found
    return "stopped", None


def ended(settings: Settings, run: WatchedRun, status: str, exit_code: int | None = None) -> None:
    """The watcher is done with the run: this machine's record says so (a volume's run: the cache)."""
    if run.record is None:
        from runner.watcher import volume_run

        volume_run.forget(settings, run.run_id)
        return
    paths = settings.paths
    fresh = run_record.load(paths, run.run_id) or run.record
    fresh.status, fresh.exit_code = status, exit_code
    run_record.save(paths, fresh)


__all__ = ["WATCHED", "WatchedRun", "ended", "of_record", "stopped_result", "unfinished", "watched"]
