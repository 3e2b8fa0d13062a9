"""Waiting for an event instead of sleeping a guessed time: the one poll loop the tests, the
benchmarks and the demo share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.02,
    *,
    error: type[Exception] = AssertionError,
) -> T:
    """predicate()'s first truthy value, polled every `interval` s; `error` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
