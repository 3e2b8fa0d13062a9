"""Waiting for a GPU: `runner train --wait-for-capacity 6h` (and the watcher) try again with backoff while
RunPod has no GPU for the pod, instead of giving up (ExitCode.POD).

    wait = CapacityWait(limit_s=6 * 3600)
    running = wait.retry(lambda: stack_pod.start_for_command(say=say), say, market=lambda: market_line(...))

Each round says when the next try is and what RunPod lists right now for the stack's GPU (stock and price,
spot and on-demand), so a user who comes back sees why it waits. Only PodNoCapacity is waited out: a
refused bid, a retired spot API or a bad key is not a matter of time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from backends.polling import Backoff
from runner import timeouts
from runner.errors import PodNoCapacity
from runner.types import Say

if TYPE_CHECKING:
    from backends.runpod.client import RunPodClient
    from runner.pod.stack_outputs import StackOutputs

T = TypeVar("T")


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


@dataclass
class CapacityWait:
    """How long to keep trying when there is no GPU (limit_s 0: not at all), and the rounds so far."""

    limit_s: float
    on_wait: Callable[[PodNoCapacity, int], object] | None = None  # each round (an event, a notification)
    sleep: Callable[[float], object] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rounds: int = field(default=0, init=False)
    _backoff: Backoff | None = field(default=None, init=False, repr=False)

    @property
    def enabled(self) -> bool:
        return self.limit_s > 0

    def retry(self, attempt: Callable[[], T], say: Say, *, market: Callable[[], str] | None = None) -> T:
        """attempt() until it does not raise PodNoCapacity; the last PodNoCapacity once limit_s has passed
        (counted from this wait's first refusal, across calls: a recovery's several tries share one limit)."""
        while True:
            try:
                return attempt()
            except PodNoCapacity as e:
                if not self.enabled:
                    raise
                if self._backoff is None:
                    t = timeouts.current()
                    self._backoff = Backoff(
                        deadline_s=self.limit_s,
                        first_s=t.capacity_first_pause_s,
                        factor=1.5,
                        cap_s=t.capacity_max_pause_s,
                        sleep=self.sleep,
                        clock=self.clock,
                    )
                backoff = self._backoff
                if backoff.remaining <= 0:
                    raise PodNoCapacity(
                        f"still no GPU for the pod after waiting {_clock_text(backoff.elapsed)} "
                        f"(--wait-for-capacity {_clock_text(self.limit_s)})",
                        cause=e.headline,
                        hint=e.hint,
                    ) from e
                self.rounds += 1
                pause = min(backoff.delay, backoff.remaining)
                listed = ""
                if market is not None:
                    listed = f"; RunPod lists {market()}"
                say(
                    f"no GPU for the pod ({e.headline}){listed}; trying again in {_clock_text(pause)} "
                    f"(waiting {_clock_text(backoff.elapsed)} of {_clock_text(self.limit_s)}, round {self.rounds})"
                )
                if self.on_wait is not None:
                    self.on_wait(e, self.rounds)
                backoff.wait()

    def reset(self) -> None:
        """The GPU came: a later shortage (another preemption) gets the whole limit again."""
        self._backoff = None
        self.rounds = 0


def market_line(client: RunPodClient, outputs: StackOutputs) -> str:
    """What RunPod lists now for the stack's GPU, spot and on-demand: stock and price; best effort (a read
    that fails is said as such, never raised: the wait goes on)."""
    from backends.runpod.errors import RunPodError

    gpu, count, dc = outputs.gpu_type, outputs.gpu_count or 1, outputs.data_center
    if not gpu:
        return "nothing (the stack's outputs name no GPU type)"
    parts = []
    try:
        spot = client.spot_price(gpu, count, dc)
        bid = f", minimum bid ${spot.minimum_bid_per_gpu:.3f}/GPU-h" if spot.minimum_bid_per_gpu is not None else ""
        parts.append(f"spot stock {(spot.stock_status or 'none').lower()}{bid}")
    except RunPodError:
        parts.append("spot: no answer")
    try:
        od = client.on_demand_price(gpu, count, dc)
        parts.append(f"on-demand stock {od.stock.lower()} at ${od.per_gpu:.3f}/GPU-h")
    except RunPodError:
        parts.append("on-demand: no answer")
    where = f" in {dc}" if dc else ""
    return f"{count}x {gpu}{where}: " + ", ".join(parts)


__all__ = ["CapacityWait", "market_line"]
