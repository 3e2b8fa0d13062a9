"""The steps of bringing a pod up and down, as plain functions over a RunPodClient.

obtain_pod: spot with the bid, or by policy on-demand under the price cap.
wait_until_reachable: RUNNING plus an SSH banner on the published port, under a deadline.
terminate_and_wait: idempotent terminate that returns once the pod is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from backends.polling import Backoff
from backends.runpod.client import RunPodClient
from backends.runpod.errors import BidTooLow, GraphQLGone, NoCapacity, NotFound, RunPodError, SpotUnavailable
from backends.runpod.models import ERROR, EXITED, TERMINATED, CatalogPrice, Pod, PodSpec
from backends.ssh_probe import read_ssh_banner

SPOT = "spot"
ON_DEMAND = "on-demand"
_FAILED_STATES = (EXITED, ERROR, TERMINATED)


class PodCreateError(RuntimeError):
    """The pod could not be obtained or did not become reachable; the message says what to do."""

    expected = True  # `pulumi up` shows the message alone (infra/provider_support.py)


class PodNotReachable(PodCreateError):
    pass


class PodTerminateError(RuntimeError):
    expected = True


class Probe(Protocol):
    def __call__(self, host: str, port: int, *, timeout: float) -> str | None: ...


def obtain_pod(
    client: RunPodClient,
    spec: PodSpec,
    *,
    bid_per_gpu: float,
    spot_fallback: str,
    max_on_demand_price_per_gpu: float | None,
) -> tuple[Pod, str]:
    """Create the pod; returns it with the market actually obtained ("spot" | "on-demand")."""
    what = f"{spec.gpu_count}x {spec.gpu_type} in {spec.data_center}"
    try:
        return client.create_spot_pod(spec, bid_per_gpu), SPOT
    except BidTooLow as exc:
        raise PodCreateError(
            f"RunPod refused the spot bid of ${bid_per_gpu:.2f}/GPU-h for {what} as too low "
            f"({exc.message}). Nothing was created. Raise it: `pulumi config set bidPerGpu <usd>`."
        ) from None
    except (NoCapacity, SpotUnavailable) as exc:
        if isinstance(exc, NoCapacity):
            reason = "RunPod has no spot capacity for it right now"
        elif isinstance(exc, GraphQLGone):
            reason = (
                "RunPod retired its GraphQL API, the only API that could rent spot pods, so RunPod "
                "does not offer spot pods through its API any more"
            )
        else:
            reason = "RunPod does not offer spot pods through its API any more"
        if spot_fallback != ON_DEMAND:
            raise PodCreateError(
                f"No spot pod {what} at a bid of ${bid_per_gpu:.2f}/GPU-h: {reason} ({exc.message}). "
                "Nothing was created. Retry later with `pulumi up`, raise bidPerGpu, or allow an "
                "on-demand pod instead: `pulumi config set spotFallback on-demand` and "
                "`pulumi config set maxOnDemandPricePerGpu <usd per GPU-hour>`."
            ) from None
        cap = max_on_demand_price_per_gpu
        price, why_unknown = _on_demand_price(client, spec)
        # An unknown price cannot be shown to be under the cap, so it is treated as over it.
        if price is None:
            raise PodCreateError(
                f"Spot {what} unavailable ({reason}) and the on-demand price is unknown ({why_unknown}), "
                f"so the cap maxOnDemandPricePerGpu={cap} cannot be checked. Nothing was created. "
                "Retry later with `pulumi up`; check the current price in the RunPod console."
            ) from None
        per_pod = f" (${price.per_hour:.2f}/h for {spec.gpu_count} GPUs)" if spec.gpu_count > 1 else ""
        if cap is None or price.per_gpu > cap:
            raise PodCreateError(
                f"Spot {what} unavailable ({reason}); on-demand lists at ${price.per_gpu:.2f}/GPU-h{per_pod} "
                f"({price.price_field} of RunPod's GPU catalog), above maxOnDemandPricePerGpu={cap}. Nothing was "
                "created. Raise the cap (`pulumi config set maxOnDemandPricePerGpu <usd>`) or retry later."
            ) from None
        try:
            return client.create_on_demand_pod(spec), ON_DEMAND
        except NoCapacity as exc2:
            raise PodCreateError(
                f"Neither spot nor on-demand capacity for {what} ({exc2.message}). Nothing was created. "
                "Retry later with `pulumi up` or choose another dataCenter (a new volume comes with it)."
            ) from None


def _on_demand_price(client: RunPodClient, spec: PodSpec) -> tuple[CatalogPrice | None, str]:
    """The on-demand list price in the stack's cloud from the REST v2 GPU catalog (`price.secure` or
    `price.community`, per GPU), or None with why it is unknown."""
    try:
        return client.on_demand_price(spec.gpu_type, spec.gpu_count, spec.data_center, spec.cloud_type), ""
    except RunPodError as exc:
        return None, exc.message


def wait_until_reachable(
    client: RunPodClient,
    pod_id: str,
    *,
    timeout_s: float,
    probe: Probe = read_ssh_banner,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Pod:
    """Poll until RUNNING with a public SSH endpoint that answers with an SSH banner."""
    backoff = Backoff(timeout_s, first_s=0.2, factor=1.5, cap_s=5.0, sleep=sleep, clock=clock)
    while True:
        pod = client.get_pod(pod_id)
        if pod.status in _FAILED_STATES:
            detail = client.get_pod(pod_id, with_history=True).last_status_change if pod.status != TERMINATED else None
            raise PodNotReachable(
                f"pod {pod_id} went {pod.status} while starting"
                + (f" ({detail})" if detail else "")
                + "; retry with `pulumi up`"
            )
        if pod.is_running and pod.ssh is not None:
            if probe(pod.ssh.host, pod.ssh.port, timeout=max(0.5, min(5.0, backoff.remaining))):
                return pod
            last = f"RUNNING, but {pod.ssh.host}:{pod.ssh.port} gives no SSH banner yet"
        else:
            last = f"{pod.status}, no public SSH endpoint yet"
        if not backoff.wait():
            raise PodNotReachable(
                f"pod {pod_id} was not reachable over SSH within {timeout_s:.0f}s (last seen: {last}). "
                "Raise createTimeoutMinutes if the image is large, then `pulumi up` again"
            )


def terminate_and_wait(
    client: RunPodClient,
    pod_id: str,
    *,
    timeout_s: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Terminate; already gone is fine. Returns when RunPod no longer lists the pod as alive,
    so a volume it mounted can be deleted right after."""
    try:
        client.terminate_pod(pod_id)
    except NotFound:
        return
    backoff = Backoff(timeout_s, first_s=0.2, factor=1.5, cap_s=5.0, sleep=sleep, clock=clock)
    while True:
        pod = client.find_pod(pod_id)
        if pod is None or pod.status == TERMINATED:
            return
        if not backoff.wait():
            raise PodTerminateError(
                f"pod {pod_id} was asked to terminate but still shows {pod.status} after {timeout_s:.0f}s; "
                "check the RunPod console and terminate it there if needed"
            )
