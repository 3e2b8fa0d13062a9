"""Waiting with backoff under a deadline: the one loop shape the providers and the runner share.

    backoff = Backoff(deadline_s=60, first_s=0.5, factor=2, cap_s=5)
    while True:
        if done():
            return ...
        if not backoff.wait():        # the deadline has passed: no more tries
            raise TimeoutError(...)

`sleep` may be an Event's wait (a stop request then ends the pause early); tests pass a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Backoff:
    """Pauses between tries: first_s, then times factor, at most cap_s; never past the deadline."""

    deadline_s: float
    first_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 5.0
    sleep: Callable[[float], object] = time.sleep
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    delay: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.delay = self.first_s

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def remaining(self) -> float:
        return self.deadline_s - self.elapsed

    def wait(self) -> bool:
        """Pause before the next try; False, without pausing, once the deadline has passed."""
        left = self.remaining
        if left <= 0:
            return False
        self.sleep(min(self.delay, left))
        self.delay = min(self.delay * self.factor, self.cap_s)
        return True


def poll_until(probe: Callable[[], T | None], backoff: Backoff) -> T | None:
    """probe() until it returns something other than None; None when the deadline passes first."""
    while True:
        found = probe()
        if found is not None:
            return found
        if not backoff.wait():
            return None


__all__ = ["Backoff", "poll_until"]
