"""Noticing that the pod stopped under a training run, from the API side.

PodWatch reads the pod every interval in a background thread (one cheap read) and stops the
follower as soon as the pod is not RUNNING. This covers a supervisor SIGKILLed without SIGTERM
(state.json still says "running") and an SSH link that dies silently (a vanished host sends no
TCP reset). confirm_interruption asks, after training got SIGTERM, who stopped the pod.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from backends.polling import Backoff, poll_until
from runner.pod.state import PodState

Observation = tuple[PodState, object]
Observe = Callable[[], "Observation | None"]


class PodWatch:
    """Stops at the first finding that the pod is not up (verdict = (state, pod)) and calls on_verdict()."""

    def __init__(self, observe: Observe, interval_s: float, on_verdict: Callable[[], None]):
        self.observe, self.interval_s, self.on_verdict = observe, interval_s, on_verdict
        self.verdict: Observation | None = None
        self.detected_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pod-watch", daemon=True)

    def start(self) -> PodWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                seen = self.observe()
            except Exception:  # noqa: BLE001 - the follower must never die of a watcher hiccup
                seen = None
            if seen is None or PodState(seen[0]).up:
                continue
            self.detected_at = time.time()
            self.verdict = seen
            self.on_verdict()
            return


def confirm_interruption(observe: Observe, *, deadline_s: float, poll_s: float) -> Observation | None:
    """After training got SIGTERM: wait until the API shows the pod not up -> (state, pod),
    or None when it stays RUNNING (the container kept running: relaunch there)."""

    def stopped() -> Observation | None:
        seen = observe()
        return seen if seen is not None and not PodState(seen[0]).up else None

    return poll_until(stopped, Backoff(deadline_s, first_s=poll_s, factor=1.0, cap_s=poll_s))


__all__ = ["PodWatch", "confirm_interruption"]
