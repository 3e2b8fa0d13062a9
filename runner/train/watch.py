"""Noticing that the pod stopped under a training run, from the API side.

PodWatch reads the pod every interval in a background thread (one cheap read) and stops the
follower once RunPod's answers say the pod is not up, consistently (runner/pod/judge.py: two answers
in a row; an API error is no answer). This covers a supervisor SIGKILLed without SIGTERM (state.json
still says "running") and an SSH link that dies silently (a vanished host sends no TCP reset).
confirm_interruption asks, after training got SIGTERM, who stopped the pod (the pod's own record
already says it stopped: one answer is enough).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from backends.polling import Backoff, poll_until
from runner.pod.judge import InterruptionJudge
from runner.pod.pod import Seen

Observe = Callable[[], "Seen | None"]


class PodWatch:
    """Stops at the first finding that the pod is not up (verdict: that read) and calls on_verdict()."""

    def __init__(
        self,
        observe: Observe,
        interval_s: float,
        on_verdict: Callable[[], None],
        on_seen: Callable[[Seen], None] | None = None,
    ):
        """on_seen: told of every answer (the GPUs' utilization is sampled from these reads)."""
        self.observe, self.interval_s, self.on_verdict, self.on_seen = observe, interval_s, on_verdict, on_seen
        self.judge = InterruptionJudge(reads=2)
        self.verdict: Seen | None = None
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
            if seen is not None and self.on_seen is not None:
                try:
                    self.on_seen(seen)
                except Exception:  # noqa: BLE001 - a sample is never worth the watch
                    pass
            now = time.time()
            confirmed = self.judge.saw(seen, now)
            if confirmed is None:
                continue
            self.detected_at = now
            self.verdict = confirmed
            self.on_verdict()
            return


def confirm_interruption(observe: Observe, *, deadline_s: float, poll_s: float) -> Seen | None:
    """After training got SIGTERM: wait until the API shows the pod not up (that read), or None when it
    stays RUNNING (the container kept running: relaunch there)."""

    def stopped() -> Seen | None:
        seen = observe()
        return seen if seen is not None and not seen.state.up else None

    return poll_until(stopped, Backoff(deadline_s, first_s=poll_s, factor=1.0, cap_s=poll_s))


__all__ = ["PodWatch", "confirm_interruption"]
