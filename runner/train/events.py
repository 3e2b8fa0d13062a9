"""What the stages of `runner train` hand each other: a launch, and how an attempt ended (as values):
Ended (training's end), Interrupted (the pod's verdict, or the budget), Detached (Ctrl-C), Lost (no link)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remote.podside.contract import AttemptState, LaunchStatus
from runner.errors import EXIT_POD, RunnerError
from runner.pod.state import PodState
from runner.types import StrEnum


class StopCause(StrEnum):
    """Why an attempt stopped before its end (the pod states, plus two of the runner's own)."""

    PREEMPTED = PodState.PREEMPTED.value
    STOPPED_BY_USER = PodState.STOPPED_BY_USER.value
    STOPPED_BY_RUNPOD = PodState.STOPPED_BY_RUNPOD.value
    GONE = PodState.GONE.value
    BUDGET = "budget"  # --budget-usd reached: the runner stopped the pod
    KILLED = "killed"  # SIGTERM reached training, the pod stayed RUNNING


# What automatic recovery undoes; a stop by the user or RunPod, or the budget, is never fought.
RECOVERABLE = (StopCause.PREEMPTED, StopCause.GONE, StopCause.KILLED)


@dataclass(frozen=True)
class Launched:
    """The launcher's RT_RESULT (remote/podside/contract.py ResultKey)."""

    status: str  # LaunchStatus
    run_id: str
    attempt: int
    log: str
    log_offset: int
    resume_from: str | None
    state_file: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def attached(self) -> bool:
        return self.status == LaunchStatus.ALREADY_RUNNING


@dataclass(frozen=True)
class Ended:
    state: str  # AttemptState (succeeded | failed | preempted) or "unknown"
    exit_code: int | None
    checkpoint: str | None
    source: str  # footer | state | note | superseded
    started_at: str | None = None
    ended_at: str | None = None

    @property
    def preempted(self) -> bool:
        return self.state == AttemptState.PREEMPTED


@dataclass(frozen=True)
class Interrupted:
    kind: StopCause
    message: str
    checkpoint: str | None = None


@dataclass(frozen=True)
class Detached:
    pass


@dataclass(frozen=True)
class Lost:
    """The runner lost its link to the target for good; training may well go on there."""

    error: RunnerError  # what to tell the user (an SshError, with how to come back)


# Decision.recovered when another runner or watcher on this machine brought the pod back: this one only
# relaunches there (the launcher attaches it to the attempt the other one started), and counts nothing.
RECOVERED_ELSEWHERE = "elsewhere"


@dataclass(frozen=True)
class Decision:
    """What a recovery strategy decided about an interruption."""

    retry: bool
    exit_code: int = EXIT_POD
    message: str = ""
    prepared: bool = False  # retry: the strategy already made the target reachable again
    recovered: str | None = None  # retry: how the pod came back (resumed | running | recreated | elsewhere)


__all__ = [
    "Decision",
    "Detached",
    "Ended",
    "Interrupted",
    "Launched",
    "Lost",
    "RECOVERABLE",
    "RECOVERED_ELSEWHERE",
    "StopCause",
]
