"""One pass of the watcher: look at the stack's pod through RunPod's API and, when an interruption is
confirmed, recover the unfinished run as `runner train` would.

    the run      this machine's newest unfinished run of the stack (runs.py); else, for a watcher on a
                 machine that did not start it, the run the volume records (volume_run.py: read over SSH
                 while the pod runs, through S3 while it is stopped, kept between passes)
    the look     StackPod.observe(): one API read; an API error is no answer
    the verdict  runner/pod/judge.py: RunPod's own state, not up, in two answers spanning span_s; the
                 sightings are kept in <state dir>/<stack>/watch.json, so `watch --once` from cron judges
                 across passes
    recovery     AutoRecovery, as in `runner train` (resume by bid, replace through the stack, on-demand by
                 the stack's policy), within the run's own limits (max_recoveries, budget_usd and
                 wait_for_capacity_s), under the machine's recovery claim (runner/pod/claim.py): an attached
                 `runner train` or a second watcher that sees the same preemption finds the pod running
                 again and stands back
    relaunch     the pod's own start command relaunches the run when its container starts (auto-resume);
                 for a run of this machine the watcher also runs the launch a detached `runner train
                 --run-id <id>` makes, which attaches when the pod was first (the launcher's lock)
    events       preempted, recovering, waiting-for-capacity and gave-up (runner/eventlog.py, source
                 "watcher"); the pod sends recovered when the relaunched attempt starts
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from remote.podside.contract import DEFAULT_MAX_RECOVERIES, Event, EventSource
from runner.errors import RunnerError
from runner.paths import write_private
from runner.pod.judge import InterruptionJudge, Sightings
from runner.settings import Settings
from runner.train.events import RECOVERABLE, RECOVERED_ELSEWHERE
from runner.types import Say
from runner.watcher import runs
from runner.watcher.runs import WatchedRun

SPAN_S = 20.0  # an interruption needs RunPod's answers to agree over at least this long (and two of them)


class Outcome(str, Enum):
    NOTHING = "nothing to watch"  # no unfinished run: a background watcher ends
    UP = "training runs"
    NO_ANSWER = "the API did not answer"
    WAITING = "not up: waiting for a second answer"
    NOT_OURS = "stopped, not preempted: left alone"
    RECOVERED = "recovered and relaunched"
    ELSEWHERE = "recovered by another runner or watcher"
    GAVE_UP = "gave up"


@dataclass(frozen=True)
class PassResult:
    outcome: Outcome
    run_id: str | None = None
    detail: str = ""


def _sightings_path(settings: Settings) -> Path:
    return settings.paths.pod_dir / "watch.json"


def _load_sightings(path: Path) -> Sightings:
    try:
        return Sightings.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return Sightings()


def watch_pass(settings: Settings, say: Say, *, span_s: float = SPAN_S) -> PassResult:
    from runner.pod.capacity import CapacityWait
    from runner.train.targets.base import interrupted as interruption_of
    from runner.train.targets.pod import PodTarget

    local = runs.unfinished(settings.paths, settings.pod)
    wait_s = (local.wait_for_capacity_s or 0.0) if local is not None else 0.0
    target = PodTarget(settings, capacity=CapacityWait(wait_s))
    target.preflight()
    seen = target.observe()
    run = runs.watched(settings, target, local, seen)
    if run is None:
        return PassResult(Outcome.NOTHING)
    sightings_file = _sightings_path(settings)
    judge = InterruptionJudge(reads=2, span_s=span_s, sightings=_load_sightings(sightings_file))
    confirmed = judge.saw(seen, time.time())
    write_private(sightings_file, json.dumps(judge.sightings.to_json()) + "\n")
    if seen is None:
        return PassResult(Outcome.NO_ANSWER, run.run_id)
    if confirmed is None:
        return PassResult(Outcome.UP if seen.state.up else Outcome.WAITING, run.run_id, str(seen.state))
    interruption = interruption_of(target.pod_id, confirmed.state, confirmed.detail)
    if interruption.kind not in RECOVERABLE:
        say(f"{interruption.message}: not a preemption, so run {run.run_id} is left as it is")
        runs.ended(settings, run, *runs.stopped_result(settings, target.outputs, run))
        return PassResult(Outcome.NOT_OURS, run.run_id, interruption.message)
    tell = _teller(settings, run, target.pod_id)
    tell(Event.PREEMPTED, interruption.message)
    result = _recover(settings, target, run, interruption, say, tell)
    if result.outcome in (Outcome.RECOVERED, Outcome.ELSEWHERE):
        write_private(sightings_file, json.dumps(Sightings().to_json()) + "\n")
    return result


def _teller(settings: Settings, run: WatchedRun, pod_id: str | None):
    from runner.eventlog import RunnerEvents

    events = RunnerEvents.of(settings, EventSource.WATCHER)

    def tell(event: Event, message: str, *, recurring: bool = False) -> None:
        events.emit(
            event,
            run.run_id,
            run.attempt,
            pod=pod_id,
            step=run.step,
            checkpoint=run.checkpoint,
            cost_usd=run.cost_usd,
            message=message,
            recurring=recurring,
        )

    return tell


def _recover(settings, target, run: WatchedRun, interruption, say: Say, tell) -> PassResult:
    from runner.train.recovery import AutoRecovery, RunContext

    if not run.relaunchable:
        message = (
            f"run {run.run_id} was preempted, but the stack's auto-resume is off and this machine did not start "
            f"it, so nothing here can relaunch it: `runner train --run-id {run.run_id}` from its project does"
        )
        say(message)
        tell(Event.GAVE_UP, message)
        return PassResult(Outcome.GAVE_UP, run.run_id, message)
    target.on_capacity_wait(
        lambda e, n: tell(Event.WAITING_FOR_CAPACITY, e.headline, recurring=True) if n == 1 else None
    )
    limit = run.max_recoveries if run.max_recoveries is not None else DEFAULT_MAX_RECOVERIES
    recovery = AutoRecovery(limit, run.budget_usd, paths=settings.paths)
    context = RunContext(run.run_id, run.resume_command, run.checkpoint, run.recoveries_done, run.cost_usd, say, tell)
    decision = recovery.decide(interruption, target, context)
    if not decision.retry:
        say(decision.message)
        tell(Event.GAVE_UP, decision.message)
        runs.ended(settings, run, "preempted", decision.exit_code)
        return PassResult(Outcome.GAVE_UP, run.run_id, decision.message)
    if decision.recovered == RECOVERED_ELSEWHERE:
        return PassResult(Outcome.ELSEWHERE, run.run_id)
    if run.record is None:  # the pod's own start relaunches it (auto-resume)
        say(f"pod {target.pod_id} is back; its start command relaunches run {run.run_id}")
        return PassResult(Outcome.RECOVERED, run.run_id)
    try:
        _relaunch(settings, target, run, decision.recovered)
    except RunnerError as e:
        say(f"the pod is back, but relaunching run {run.run_id} failed ({e.message}); trying again next pass")
        return PassResult(Outcome.WAITING, run.run_id, e.message)
    return PassResult(Outcome.RECOVERED, run.run_id)


def _relaunch(settings: Settings, target, run: WatchedRun, recovered: str | None) -> None:
    """The next attempt of a run of this machine, detached, as `runner train --run-id <id> --detach` starts
    it (the launcher attaches when the pod's own start relaunched it first)."""
    from runner.train.options import TrainOptions
    from runner.train.session import TrainSession
    from runner.train.train_config import load_train_config

    record = run.record
    assert record is not None
    options = TrainOptions(
        config=record.config,
        run_id=record.run_id,
        detach=True,
        keep_pod=record.keep_pod,
        budget_usd=record.budget_usd,
        max_recoveries=record.max_recoveries if record.max_recoveries is not None else DEFAULT_MAX_RECOVERIES,
        spawn_watcher=False,
        wait_for_capacity_s=record.wait_for_capacity_s or 0.0,
        event_source=EventSource.WATCHER,
    )
    cfg = load_train_config(record.config, settings.project_root)
    try:
        TrainSession(options, settings, target, cfg, recovered=recovered).run()
    finally:
        target.drop_spare()  # the launch's kept link: an open session would hold off the pod's idle stop


__all__ = ["Outcome", "PassResult", "SPAN_S", "watch_pass"]
