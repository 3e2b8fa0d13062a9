"""One pass of the watcher: look at the stack's pod through RunPod's API (no SSH) and, when an interruption
is confirmed, recover the unfinished run as `runner train` would.

    the run      the newest unfinished run of the stack, from this machine's records (runs.py); none: done
    the look     StackPod.observe(): one API read; an API error is no answer
    the verdict  runner/pod/judge.py: RunPod's own state, not up, in two answers spanning span_s; the
                 sightings are kept in <state dir>/<stack>/watch.json, so `watch --once` from cron judges
                 across passes
    recovery     AutoRecovery, as in `runner train` (resume by bid, replace through the stack, on-demand by
                 the stack's policy), within the run's own limits (max_recoveries, budget_usd and
                 wait_for_capacity_s in its record),
                 under the machine's recovery claim (runner/pod/claim.py): an attached `runner train` or a
                 second watcher that sees the same preemption finds the pod running again and stands back
    relaunch     a detached `runner train` session of the same run id: the next attempt from the newest
                 complete checkpoint (the launcher attaches instead when the pod's own start already relaunched it)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from runner.errors import RunnerError
from runner.paths import write_private
from runner.pod.judge import InterruptionJudge, Sightings
from runner.settings import Settings
from runner.train.events import RECOVERABLE, RECOVERED_ELSEWHERE
from runner.train.run_record import RunRecord
from runner.types import Say
from runner.watcher import runs

SPAN_S = 20.0  # an interruption needs RunPod's answers to agree over at least this long (and two of them)
DEFAULT_MAX_RECOVERIES = 3


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
    return settings.paths.stack_dir / "watch.json"


def _load_sightings(path: Path) -> Sightings:
    try:
        return Sightings.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return Sightings()


def watch_pass(settings: Settings, say: Say, *, span_s: float = SPAN_S) -> PassResult:
    from runner.train.targets.base import interrupted as interruption_of
    from runner.train.targets.pod import PodTarget

    paths = settings.paths
    record = runs.unfinished(paths)
    if record is None:
        return PassResult(Outcome.NOTHING)
    from runner.pod.capacity import CapacityWait

    target = PodTarget(settings, capacity=CapacityWait(record.wait_for_capacity_s or 0.0))
    target.preflight()
    seen = target.observe()
    sightings_file = _sightings_path(settings)
    judge = InterruptionJudge(reads=2, span_s=span_s, sightings=_load_sightings(sightings_file))
    confirmed = judge.saw(seen, time.time())
    write_private(sightings_file, json.dumps(judge.sightings.to_json()) + "\n")
    if seen is None:
        return PassResult(Outcome.NO_ANSWER, record.run_id)
    if confirmed is None:
        return PassResult(Outcome.UP if seen.state.up else Outcome.WAITING, record.run_id, str(seen.state))
    interruption = interruption_of(target.pod_id, confirmed.state, confirmed.detail)
    if interruption.kind not in RECOVERABLE:
        say(f"{interruption.message}: not a preemption, so run {record.run_id} is left as it is")
        runs.set_status(paths, record, "stopped")
        return PassResult(Outcome.NOT_OURS, record.run_id, interruption.message)
    return _recover(settings, target, record, interruption, say, judge, sightings_file)


def _recover(settings, target, record: RunRecord, interruption, say: Say, judge, sightings_file) -> PassResult:
    from runner.train.recovery import AutoRecovery, RunContext

    paths = settings.paths
    limit = record.max_recoveries if record.max_recoveries is not None else DEFAULT_MAX_RECOVERIES
    recovery = AutoRecovery(limit, record.budget_usd, paths=paths)
    resume = f"python -m runner train --config {record.config} --run-id {record.run_id}"
    context = RunContext(
        record.run_id, resume, record.last_checkpoint, record.recoveries or 0, record.estimated_cost_usd, say
    )
    decision = recovery.decide(interruption, target, context)
    if not decision.retry:
        say(decision.message)
        runs.set_status(paths, record, "preempted", decision.exit_code)
        return PassResult(Outcome.GAVE_UP, record.run_id, decision.message)
    if decision.recovered == RECOVERED_ELSEWHERE:
        return PassResult(Outcome.ELSEWHERE, record.run_id)
    try:
        _relaunch(settings, target, record, decision.recovered, say)
    except RunnerError as e:
        say(f"the pod is back, but relaunching run {record.run_id} failed ({e.message}); trying again next pass")
        return PassResult(Outcome.WAITING, record.run_id, e.message)
    judge.sightings = Sightings()
    write_private(sightings_file, json.dumps(judge.sightings.to_json()) + "\n")
    return PassResult(Outcome.RECOVERED, record.run_id)


def _relaunch(settings: Settings, target, record: RunRecord, recovered: str | None, say: Say) -> None:
    """The next attempt of the run, detached, the way `runner train --run-id <id> --detach` starts it."""
    from runner.train.options import TrainOptions
    from runner.train.session import TrainSession
    from runner.train.train_config import load_train_config

    options = TrainOptions(
        config=record.config,
        run_id=record.run_id,
        detach=True,
        keep_pod=record.keep_pod,
        budget_usd=record.budget_usd,
        max_recoveries=record.max_recoveries if record.max_recoveries is not None else DEFAULT_MAX_RECOVERIES,
        spawn_watcher=False,
        wait_for_capacity_s=record.wait_for_capacity_s or 0.0,
    )
    cfg = load_train_config(record.config, settings.project_root)
    session = TrainSession(options, settings, target, cfg, recovered=recovered)
    session.run()


__all__ = ["Outcome", "PassResult", "SPAN_S", "watch_pass"]
