"""The pod's records under <workspace>/.runner/ besides state.json: why the pod stopped itself, the idle
stop's status, and per run its spec, the hold marker, the event log and the notification targets.

Part of the runner–pod protocol: contract.py re-exports every name here (`contract.SpecKey`,
`contract.Event`...), so the runner, the watcher and the pod spell these files one way. Standard
library only: it travels to the pod in the program and in the start command's slice of it.

    runs/<run_id>/spec.json   SpecKey (mode 600): everything a relaunch with nobody attached needs
    hold.json                 HoldKey: written by the runner before it stops a run on purpose
    events/<run_id>.jsonl     EventKey, one object a line, appended by the pod's senders
    sent/<event id>           created with O_EXCL by the one party that sends that event
    notify.json               NotifyKey (mode 600): the webhook URLs from RT_NOTIFY_URLS
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Dict, Mapping, Optional, Tuple

from .staterecord import AttemptState, StateKey


class SelfStopKey:
    """Keys of <workspace>/.runner/self_stop.json: a stopped pod whose marker names its attempt stopped
    itself; one without it was stopped by someone else or preempted."""

    RUN_ID, ATTEMPT, AT = "run_id", "attempt", "at"  # at: UTC time, like started_at
    REASON = "reason"  # SelfStopReason (older markers: none = end of run)
    ALL = (RUN_ID, ATTEMPT, AT, REASON)


class SelfStopReason:
    RUN_ENDED, IDLE = "run-ended", "idle"


class IdleKey:
    """Keys of <workspace>/.runner/idlewatch.json, the idle stop's status (idlewatch.py)."""

    PID, IDLE_S, CHECKS, BUSY, IDLE_FOR_S, AT, ALIVE = "pid", "idle_s", "checks", "busy", "idle_for_s", "at", "alive"


class StopMethod:
    """state.json's stop_method, in the order the pod tries them (REST v2, then runpodctl)."""

    REST, RUNPODCTL, RUNPODCTL_LEGACY = "REST v2", "runpodctl pod stop", "runpodctl stop pod"


# ---------------------------------------------------------------- the run's spec
DEFAULT_MAX_RECOVERIES = 3  # `runner train --max-recoveries`'s default, for a launch that names none
DEFAULT_STALL_MINUTES = 45.0  # a first model download or a long evaluation stays under it
DEFAULT_STALL_GPU_UTIL = 5.0  # percent
DEFAULT_STALL_GPU_WINDOW_MINUTES = 30.0


class SpecKey:
    """Keys of .runner/runs/<run_id>/spec.json, rewritten by every launch of the run (launch.py)."""

    RUN_ID, ATTEMPT, WRITTEN_AT = "run_id", "attempt", "written_at"  # attempt: the launch that wrote it
    # {RT_* name: value} of the launch, as a relaunch exports them again: workspace, repo URL (without
    # credentials), branch, repo dir, code source, config, train script, launcher, GPU count, session,
    # stop pod, python, RunPod's env file, idle stop minutes and ssh ports (no run id, commit or ack wait).
    INPUTS = "inputs"
    COMMIT = "commit"  # full id of the first attempt's checkout; later attempts train exactly this (null: no git)
    MAX_RECOVERIES = "max_recoveries"  # attempts after the first the pod may start on its own
    BUDGET_USD = "budget_usd"  # null: none (the runner and the watcher enforce it; the pod records it)
    AUTO_RESUME = "auto_resume"  # false: the stack opted out (autoResume: false)
    STALL = "stall"  # {StallKey: value}


class StallKey:
    MINUTES = "minutes"  # no output and no new checkpoint this long: a stall (0: off)
    GPU_UTIL_BELOW = "gpu_util_below"  # percent
    GPU_WINDOW_MINUTES = "gpu_window_minutes"  # the GPU under gpu_util_below this long: a stall (0: off)
    ACTION = "action"  # StallAction


class StallAction(str, Enum):
    STOP = "stop"  # stop training (the newest complete checkpoint stays), record `stalled`, stop the pod
    NOTIFY = "notify"  # only report it; training goes on


# ---------------------------------------------------------------- hold.json
class HoldKey:
    """Keys of .runner/hold.json: the runner writes it (best effort) before it stops a run on purpose.
    A held run is not resumed by the pod, and its SIGTERM is recorded as `stopped`, not `preempted`."""

    RUN_ID, ATTEMPT, AT, REASON = "run_id", "attempt", "at", "reason"  # attempt null: every attempt


class HoldReason:
    STOP, BUDGET, ABANDON = "stop", "budget", "abandon"  # runner stop, --budget-usd, Ctrl-C abandon


def is_held(hold: Optional[Mapping[str, Any]], run_id: Any, attempt: Any) -> bool:
    """Whether hold.json holds this attempt: same run, and its attempt is this one or later (or null).
    An attempt launched after the hold (the user started the run again) is not held."""
    if not hold or hold.get(HoldKey.RUN_ID) != run_id or run_id is None:
        return False
    held = hold.get(HoldKey.ATTEMPT)
    if held is None:
        return True
    return _int(held) is not None and _int(attempt) is not None and _int(held) >= _int(attempt)  # type: ignore[operator]


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---------------------------------------------------------------- finished or not
def is_unfinished(state: Optional[Mapping[str, Any]], supervisor_alive: bool) -> bool:
    """The current run's last attempt was preempted, or lost (setup/running, its supervisor gone).
    Succeeded, failed, stalled and stopped are finished; so is anything not recorded."""
    what = (state or {}).get(StateKey.STATE)
    if what == AttemptState.PREEMPTED.value:
        return True
    return what in (AttemptState.SETUP.value, AttemptState.RUNNING.value) and not supervisor_alive


def recoveries(state: Optional[Mapping[str, Any]]) -> int:
    """Attempts after the first, from state.json (every launch of the run counts, whoever asked)."""
    attempt = _int((state or {}).get(StateKey.ATTEMPT))
    return max(attempt - 1, 0) if attempt is not None else 0


# ---------------------------------------------------------------- the event log
class Event(str, Enum):
    STARTED = "started"  # pod: the launcher, attempt 1
    PREEMPTED = "preempted"  # runner / watcher
    RECOVERING = "recovering"  # runner / watcher
    RECOVERED = "recovered"  # pod: the launcher, a later attempt (whoever asked for it)
    FINISHED = "finished"  # pod: the supervisor
    FAILED = "failed"  # pod: the supervisor
    STALLED = "stalled"  # pod: the supervisor's stall guard
    BUDGET_REACHED = "budget-reached"  # runner / watcher
    IDLE_STOPPED = "idle-stopped"  # pod: the idle watcher
    WAITING_FOR_CAPACITY = "waiting-for-capacity"  # runner / watcher
    GAVE_UP = "gave-up"  # pod: the auto-resume (limit reached, or the relaunch failed); runner / watcher


class EventSource:
    POD, RUNNER, WATCHER = "pod", "runner", "watcher"


class EventKey:
    """Keys of one event (a line of events/<run_id>.jsonl, and the generic webhook's JSON body)."""

    ID, EVENT, RUN_ID, POD_ID, ATTEMPT = "id", "event", "run_id", "pod_id", "attempt"
    STEP, CHECKPOINT, COST_USD, MESSAGE, TIME, SOURCE = "step", "checkpoint", "cost_usd", "message", "time", "source"
    ALL = (ID, EVENT, RUN_ID, POD_ID, ATTEMPT, STEP, CHECKPOINT, COST_USD, MESSAGE, TIME, SOURCE)


def event_id(run_id: str, attempt: Optional[int], event: str, n: Optional[int] = None) -> str:
    """`<run_id>:<attempt>:<event>[:<n>]`: the same event of the same attempt has the same id whoever
    sends it, so a sender's repeat is a no-op. n (2, 3...) numbers an event that can recur in one
    attempt (idle-stopped, stalled with action notify); the first has none."""
    base = f"{run_id}:{attempt if attempt is not None else 0}:{event}"
    return base if n is None or n <= 1 else f"{base}:{n}"


def new_event(**values: Any) -> Dict[str, Any]:
    """An event with every EventKey in the documented order (missing ones null)."""
    return keyed(EventKey.ALL, values, "event")


def keyed(keys: Tuple[str, ...], values: Mapping[str, Any], what: str) -> Dict[str, Any]:
    """A record with every one of keys, in their order (missing ones null); an unknown name is a
    programming error."""
    unknown = set(values) - set(keys)
    if unknown:
        raise KeyError(f"not {what} keys: {sorted(unknown)}")
    return {key: values.get(key) for key in keys}


class NotifyKey:
    URLS = "urls"  # notify.json: {"urls": ["https://...", ...]}


__all__ = [
    "DEFAULT_MAX_RECOVERIES",
    "DEFAULT_STALL_GPU_UTIL",
    "DEFAULT_STALL_GPU_WINDOW_MINUTES",
    "DEFAULT_STALL_MINUTES",
    "Event",
    "EventKey",
    "EventSource",
    "HoldKey",
    "HoldReason",
    "IdleKey",
    "NotifyKey",
    "SelfStopKey",
    "SelfStopReason",
    "SpecKey",
    "StallAction",
    "StallKey",
    "StopMethod",
    "event_id",
    "is_held",
    "is_unfinished",
    "keyed",
    "new_event",
    "recoveries",
]
