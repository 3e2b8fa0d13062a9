"""What state the stack's pod is in, from one API read (runner status, recovery, every reconnect)."""

from __future__ import annotations

from dataclasses import replace

from backends.runpod.models import ERROR, EXITED, RUNNING, TERMINATED, Pod, SshEndpoint
from runner.types import StrEnum


class PodState(StrEnum):
    RUNNING = "running"  # RUNNING with a public SSH endpoint
    STARTING = "starting"  # on its way to RUNNING (or RUNNING without SSH yet)
    PREEMPTED = "preempted"  # stopped: outbid by a higher spot bid
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


def classify(pod: Pod | None, *, stopped_by: str | None = None, spot: bool | None = None) -> PodState:
    """Stopped pods are told apart by GraphQL lastStatusChange (read the pod with_history=True):
    "Outbid: …" = preempted, "Exited by user: …" = stopped by the owner (or by the pod itself when
    training ended), "Exited by RunPod: …"/status ERROR = the platform stopped it.

    Without that text (GraphQL retired or not answering: REST v2 has no history) the local evidence
    decides, when the caller brings it (`spot`, the stack's market, is not None): `stopped_by` is who
    the runner knows stopped this start of the pod (runner/pod/stops.py: the runner's own stops and
    the pod's self-stops it saw); an EXITED spot pod that neither stopped was interrupted, i.e.
    preempted. Anything else (and every caller without evidence) counts as stopped by the user: the
    cautious reading, as it is not resumed on its own.
    """
    if pod is None or pod.status == TERMINATED:
        return PodState.GONE
    if pod.status == RUNNING:
        return PodState.RUNNING if pod.ssh is not None else PodState.STARTING
    if pod.status in (EXITED, ERROR):
        text = (pod.last_status_change or "").strip().lower()
        if text.startswith("outbid"):
            return PodState.PREEMPTED
        if pod.status == ERROR or text.startswith("exited by runpod") or "insufficient balance" in text:
            return PodState.STOPPED_BY_RUNPOD
        if not text and pod.pod_type is None and spot is not None and stopped_by is None:
            # No history at all (GraphQL gave neither text nor podType) and the caller brought the evidence.
            is_spot = pod.interruptible if pod.interruptible is not None else spot
            if is_spot:
                return PodState.PREEMPTED
        return PodState.STOPPED_BY_USER
    return PodState.STARTING  # PROVISIONING, STARTING, anything newer


def with_user(endpoint: SshEndpoint, default_user: str) -> SshEndpoint:
    """The API leaves the SSH user out for most images; the stack's ssh_user (root) fills it in."""
    return endpoint if endpoint.user else replace(endpoint, user=default_user)


__all__ = ["PodState", "STOPPED_STATES", "classify", "with_user"]
