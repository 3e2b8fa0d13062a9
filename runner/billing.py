"""What RunPod billed for a run's pods (REST v2 GET /v2/billing/pods, per pod, hourly buckets), beside the
runner's own estimate (price x pod time, runner/train/accounting.py).

RunPod bills in buckets: the amount covers each of the run's pods from the start of the hour the run
started, so pod time just before the run in that hour counts too, and it lags behind the pod's running
time (the last minutes may not be in it yet). The budget stop (--budget-usd) keeps using the estimate,
which is current. A billing endpoint that does not answer (an API key without the right, an outage)
leaves the estimate alone, labelled as such; nothing fails for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from backends.runpod.client import RunPodClient
from backends.runpod.errors import RunPodError
from runner.timestamps import parse_utc


@dataclass(frozen=True)
class Billed:
    usd: float
    since: str  # the start of the first hourly bucket counted, RFC 3339
    pods: tuple[str, ...]


def hour_start(when: str | None) -> str | None:
    """The start of the UTC hour holding `when` (an ISO time), as RunPod's buckets start."""
    dt = parse_utc(when) if when else None
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:00:00Z")


def ask(client: RunPodClient, pods: Iterable[str | None], since: str | None) -> Billed | None:
    """RunPod's billed amount for these pods since the hour of `since`; None when it does not answer."""
    wanted = tuple(dict.fromkeys(p for p in pods if p))
    start = hour_start(since)
    if not wanted or start is None:
        return None
    total = 0.0
    try:
        for pod_id in wanted:
            total += client.pod_billing(pod_id, start=start, bucket="hour").total_usd
    except (RunPodError, ValueError):
        return None
    return Billed(round(total, 4), start, wanted)


def text(billed: Billed | None) -> str:
    """`$0.4120 billed by RunPod (pod X, hourly from 2026-12-07 06:00 UTC)`, or why there is none."""
    if billed is None:
        return "not reported by RunPod's billing (the estimate stands alone)"
    pods = ", ".join(billed.pods)
    when = datetime.strptime(billed.since, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%d %H:%M")
    return f"${billed.usd:.4f} billed by RunPod (pod {pods}, hourly from {when} UTC; billing lags a few minutes)"


__all__ = ["Billed", "ask", "hour_start", "text"]
