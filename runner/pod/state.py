"""The states the runner acts on, decided from what the cloud says and what only the runner knows.

Only runner/pod/pod.py (StackPod.state) decides a pod's state: it brings the cloud's facts (a backend's
dialect, e.g. backends/runpod/dialect.py) and this machine's evidence (runner/pod/stops.py: who stopped
this start of the pod; the stack's market).
"""

from __future__ import annotations

from backends.states import Phase, PodFacts, StopReason
from runner.types import StrEnum


class PodState(StrEnum):
    RUNNING = "running"  # running with a public SSH endpoint
    STARTING = "starting"  # on its way to RUNNING (or RUNNING without SSH yet)
    PREEMPTED = "preempted"  # stopped: outbid by a higher spot bid (or interrupted: see decide)
    STOPPED_BY_USER = "stopped_by_user"  # stopped by the owner (or by the pod itself after training)
    STOPPED_BY_RUNPOD = "stopped_by_runpod"  # stopped by the platform (error, balance, maintenance)
    GONE = "gone"  # terminated or unknown

    @property
    def stopped(self) -> bool:
        return self in STOPPED_STATES

    @property
    def up(self) -> bool:
        """Running or about to: billing, and worth reconnecting to."""
        return self in (PodState.RUNNING, PodState.STARTING)


STOPPED_STATES = (PodState.PREEMPTED, PodState.STOPPED_BY_USER, PodState.STOPPED_BY_RUNPOD)

_BY_PHASE = {Phase.RUNNING: PodState.RUNNING, Phase.STARTING: PodState.STARTING, Phase.GONE: PodState.GONE}
_BY_REASON = {
    StopReason.OUTBID: PodState.PREEMPTED,
    StopReason.BY_OWNER: PodState.STOPPED_BY_USER,
    StopReason.BY_PLATFORM: PodState.STOPPED_BY_RUNPOD,
}


def decide(facts: PodFacts, *, stopped_by: str | None, spot: bool) -> PodState:
    """The cloud's reason when it gives one. Without (REST v2 keeps no history), the runner's evidence:
    a stopped spot pod that neither the runner nor the pod itself stopped (`stopped_by` is None) was
    interrupted, i.e. preempted; any other stopped pod was stopped by its owner, the cautious reading
    (it is not resumed on its own)."""
    if facts.phase != Phase.STOPPED:
        return _BY_PHASE[facts.phase]
    if facts.reason in _BY_REASON:
        return _BY_REASON[facts.reason]
    return PodState.PREEMPTED if spot and stopped_by is None else PodState.STOPPED_BY_USER


__all__ = ["PodState", "STOPPED_STATES", "decide"]
