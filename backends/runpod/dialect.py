"""RunPod's words in neutral terms: the one module outside the client that knows RunPod's status strings.

RUNNING with ssh.direct             Phase.RUNNING
PROVISIONING, STARTING, RUNNING
without a public SSH endpoint yet   Phase.STARTING
EXITED or ERROR                     Phase.STOPPED, and why from GraphQL's lastStatusChange:
    "Outbid: ..."                   StopReason.OUTBID
    status ERROR, "Exited by RunPod: ...", "... insufficient balance ..."   StopReason.BY_PLATFORM
    "Exited by user: ..." (or any other text, or a podType without text)    StopReason.BY_OWNER
    no text and no podType          StopReason.UNKNOWN: REST v2 keeps no history (GraphQL retired,
                                    or not answering), so the runner's own evidence decides
TERMINATED, or not found            Phase.GONE
"""

from __future__ import annotations

from backends.runpod.models import ERROR, EXITED, RUNNING, TERMINATED, Pod
from backends.states import Phase, PodFacts, StopReason


def facts(pod: Pod | None) -> PodFacts:
    if pod is None or pod.status == TERMINATED:
        return PodFacts(Phase.GONE, detail=pod.last_status_change if pod is not None else None)
    if pod.status == RUNNING:
        return PodFacts(Phase.RUNNING if pod.ssh is not None else Phase.STARTING)
    if pod.status not in (EXITED, ERROR):
        return PodFacts(Phase.STARTING)
    text = (pod.last_status_change or "").strip()
    low = text.lower()
    if low.startswith("outbid"):
        reason = StopReason.OUTBID
    elif pod.status == ERROR or low.startswith("exited by runpod") or "insufficient balance" in low:
        reason = StopReason.BY_PLATFORM
    elif not text and pod.pod_type is None:
        reason = StopReason.UNKNOWN
    else:
        reason = StopReason.BY_OWNER
    return PodFacts(Phase.STOPPED, reason, text or None)


def history_helps(pod: Pod) -> bool:
    """Whether GraphQL's history (RunPodClient.add_history) can tell more about this pod: why it
    stopped. A running or starting pod has nothing to add, and reading it costs a request."""
    return pod.status in (EXITED, ERROR)


def refused_market(message: str) -> str | None:
    """The market RunPod says a pod really is in, when it refused a resume for the wrong one:
    "Cannot resume a spot pod as an on demand pod." -> "spot"; the reverse -> "on-demand"."""
    low = (message or "").lower()
    if "spot pod as an on demand" in low:
        return "spot"
    if "on demand pod as a spot" in low:
        return "on-demand"
    return None


__all__ = ["facts", "refused_market"]
