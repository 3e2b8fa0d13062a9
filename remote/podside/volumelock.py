"""An flock on a file on the volume, waited for with a deadline: the launch lock of one pod
(.runner/launch.lock) and the volume-wide locks of what several pods share (sharedvolume.py).
MooseFS, behind RunPod's network volumes, keeps file locks across all its clients."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from .inputs import InputError


@contextmanager
def held(path: str, busy: str, wait_s: float, on_wait: Optional[Callable[[], None]] = None) -> Iterator[None]:
    """Hold the lock (not inherited by children); InputError(busy) when it is not free within wait_s.
    on_wait: called once when the lock is taken by someone else."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError:
        raise InputError(f"cannot open {path}") from None
    try:
        deadline, told = time.monotonic() + wait_s, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise InputError(busy) from None
                if not told and on_wait is not None:
                    on_wait()
                    told = True
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
