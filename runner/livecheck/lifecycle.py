"""The one short lifecycle behind `--lifecycle --max-spend USD`: the cheapest pod created, read,
stopped and terminated, with the probes only a real pod can answer (assumptions 1, 2, 4, and 8: the pod is
created with a start command that asks REST v2 to stop it with its own key, see self_stop.py).

Spending is bounded before anything is created: the lifecycle may last only as long as the cap
pays for at the pod's price (and never more than MAX_S); below MIN_S of budget it refuses. Every
pod RunPod names is recorded at once (created.py); the caller's finally removes them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from backends.runpod.client import RunPodClient
from backends.runpod.errors import BidTooLow, RunPodError
from backends.runpod.models import EXITED, RUNNING, PodSpec
from runner.livecheck import self_stop
from runner.livecheck.created import Created
from runner.livecheck.findings import Report, Verdict
from runner.livecheck.reads import Choice

IMAGE = "runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204"  # the stack's default: cached on RunPod hosts
MAX_S = 600.0
MIN_S = 180.0
BID_MARGIN = 0.01


class OverBudget(Exception):
    pass


@dataclass
class Clock:
    """Pod time bought so far: the price of each pod from its create until its terminate."""

    deadline: float = float("inf")
    running: dict[str, tuple[float, float]] = field(default_factory=dict)  # pod id -> (since, $/h)
    spent: float = 0.0

    def started(self, pod_id: str, per_hr: float) -> None:
        self.running[pod_id] = (time.monotonic(), per_hr)

    def ended(self, pod_id: str) -> None:
        since, per_hr = self.running.pop(pod_id, (time.monotonic(), 0.0))
        self.spent += per_hr * (time.monotonic() - since) / 3600

    def total(self) -> float:
        now = time.monotonic()
        return self.spent + sum(p * (now - s) / 3600 for s, p in self.running.values())

    def left(self) -> float:
        return self.deadline - time.monotonic()


def budget_seconds(per_hr: float, max_spend: float) -> float:
    return min(MAX_S, max_spend / per_hr * 3600) if per_hr > 0 else MAX_S


def run(
    client: RunPodClient,
    choice: Choice,
    created: Created,
    report: Report,
    clock: Clock,
    max_spend: float,
    say,
    poll_s: float = 2.0,
    self_stop_after_s: float = self_stop.DEFAULT_AFTER_S,
) -> None:
    spot = choice.minimum_bid is not None
    bid = round((choice.minimum_bid or 0.0) + BID_MARGIN, 3)
    per_hr = bid if spot else choice.on_demand_per_hr
    seconds = budget_seconds(per_hr, max_spend)
    if seconds < MIN_S:
        need = per_hr * MIN_S / 3600
        report.step(
            "spending cap",
            False,
            f"${max_spend:.2f} buys {seconds:.0f}s of {choice.gpu_type} at "
            f"${per_hr:.3f}/h; the lifecycle needs {MIN_S:.0f}s: raise --max-spend "
            f"to at least {need:.2f}. Nothing was created",
        )
        raise OverBudget
    clock.deadline = time.monotonic() + seconds
    report.step("spending cap", True, f"${max_spend:.2f} at ${per_hr:.3f}/h: at most {seconds:.0f}s of pod time")
    spec = PodSpec(
        name=created.name,
        image=IMAGE,
        gpu_type=choice.gpu_type,
        gpu_count=1,
        data_center=choice.data_center,
        volume_id=None,
        container_disk_gb=10,
        ports=("22/tcp",),
        env={"RT_REST_URL": client.rest_url},
        start_command=self_stop.start_command(self_stop_after_s),
    )
    created.begin()
    if spot:
        _bid_too_low(client, spec, choice, created, report, clock, say)
        say(f"creating spot pod {spec.name}: {choice.gpu_type} in {choice.data_center}, bid ${bid:.3f}/GPU-h")
        pod = client.create_spot_pod(spec, bid)
    else:
        say(f"creating on-demand pod {spec.name}: {choice.gpu_type} in {choice.data_center} (no spot offered)")
        pod = client.create_on_demand_pod(spec)
    created.add(pod.id)
    clock.started(pod.id, per_hr)
    report.step("create", True, f"{'spot' if spot else 'on-demand'} pod {pod.id} ({pod.status})")
    say(f"created pod {pod.id}")
    read = client.get_pod(pod.id, with_history=True)
    report.step("read", read.id == pod.id, f"GET /v2/pods/{pod.id}: {read.status}, {read.gpu_type}")
    if spot:
        if read.pod_type is None:
            report.find(2, Verdict.NOT_CHECKED, "GraphQL gave no podType for the pod")
        else:
            verdict = Verdict.CONFIRMED if read.pod_type in ("INTERRUPTABLE", "BID") else Verdict.REFUTED
            report.find(2, verdict, f"the spot pod reports podType {read.pod_type}")
    if _wait_running(client, pod.id, clock, report, poll_s, say):
        self_stop.observe(
            client,
            pod.id,
            running_since=time.monotonic(),
            after_s=self_stop_after_s,
            time_left=clock.left,
            report=report,
            poll_s=poll_s,
            say=say,
        )
    stopped = client.stop_pod(pod.id)
    after = client.get_pod(pod.id, with_history=True)
    report.step("stop", stopped.status == "EXITED", f"{after.status}; lastStatusChange {after.last_status_change!r}")
    if spot:
        _start_on_v2(client, pod.id, report)
    say(f"terminating pod {pod.id}")
    client.terminate_pod(pod.id)
    clock.ended(pod.id)
    report.step("terminate", True, f"DELETE /v2/pods/{pod.id}")


def _bid_too_low(client, spec: PodSpec, choice: Choice, created: Created, report: Report, clock: Clock, say) -> None:
    low = max(0.01, round((choice.minimum_bid or 0.0) / 2, 3))
    say(f"asking for a spot pod at ${low:.3f}/GPU-h, below the minimum bid (expected: refused)")
    try:
        pod = client.create_spot_pod(spec, low)
    except BidTooLow as e:
        report.find(1, Verdict.CONFIRMED, f"refused: {e.message!r}")
        return
    except RunPodError as e:
        report.find(
            1,
            Verdict.REFUTED,
            f"refused, but not recognised as a low bid: {e.message!r} "
            "(fix BidTooLow's match in backends/runpod/errors.py)",
        )
        return
    created.add(pod.id)
    clock.started(pod.id, low)
    report.find(1, Verdict.REFUTED, f"accepted (status {pod.status}): a low bid is queued, not rejected")
    client.terminate_pod(pod.id)
    clock.ended(pod.id)


def _wait_running(client, pod_id: str, clock: Clock, report: Report, poll_s: float, say) -> bool:
    """True once the pod ran (RUNNING, or already EXITED again: its start command stops it by itself)."""
    started = time.monotonic()
    while True:
        pod = client.get_pod(pod_id)
        if pod.status in (RUNNING, EXITED):
            report.step("running", True, f"{pod.status} after {time.monotonic() - started:.0f}s")
            return True
        if clock.left() <= 0:
            report.step("running", False, f"still {pod.status} when the spending cap ran out")
            return False
        say(f"pod {pod_id} is {pod.status}; waiting (up to {clock.left():.0f}s more)")
        time.sleep(min(poll_s, max(0.1, clock.left())))


def _start_on_v2(client, pod_id: str, report: Report) -> None:
    try:
        client.start_pod(pod_id)
    except RunPodError as e:
        verdict = Verdict.CONFIRMED if "spot" in e.message.lower() else Verdict.REFUTED
        report.find(4, verdict, f"refused: {e.message!r}")
        return
    report.find(4, Verdict.REFUTED, "v2 started the stopped spot pod (it bills until the terminate that follows)")


__all__ = ["Clock", "OverBudget", "budget_seconds", "run"]
