"""One recovery of the stack's pod at a time on this machine: an attached `runner train`, a background
watcher and a `runner watch --once` from cron may all see the same preemption.

    with claim_recovery(paths, say=say):
        seen = stack_pod.look()       # re-read: another party may have brought the pod back meanwhile
        ...

The claim is an flock on <state dir>/<stack>/recovery.lock, held while the pod is brought back (a
resume, or a replacement through `pulumi up`); the process that dies releases it. The stack's Pulumi
state lives on one machine (a local backend), so the parties that can recover it live there too.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runner.errors import RunnerError
from runner.paths import StatePaths
from runner.types import Say, say_nothing

WAIT_S = 1800.0  # a replacement through `pulumi up` can take many minutes


class RecoveryBusy(RunnerError):
    """Another process kept the recovery for longer than this one would wait."""


@contextmanager
def claim_recovery(paths: StatePaths, *, say: Say = say_nothing, wait_s: float = WAIT_S) -> Iterator[None]:
    path = paths.ensure().pod_dir / "recovery.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    say("another runner or watcher on this machine is recovering the pod; waiting for it")
                    told = True
                if time.monotonic() >= deadline:
                    raise RecoveryBusy(
                        f"another process held the recovery of the stack's pod for {wait_s:.0f}s",
                        hint=f"see which one: `fuser -v {path}`",
                    ) from None
                time.sleep(0.25)
        yield
    finally:
        os.close(fd)  # releases the lock


__all__ = ["RecoveryBusy", "claim_recovery"]
