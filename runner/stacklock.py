"""The per-stack lock: one runner leads a stack's pod at a time; any other attaches as a follower only.

The leader is the one process that may start, recover (resume, `pulumi up --replace`), relaunch and
stop the stack's pod for a run: `runner train` takes the lock once its checks passed, a watcher can take
it the same way. A second one finds it taken: it may follow the log and report, and it never starts,
stops or recreates anything (two leaders ran recovery twice: two `pulumi up --replace`, the second able
to replace the pod the first had just relaunched on).

    lease = StackLock.of(paths).try_lead("train")   # a Lease, or None when another process leads
    if lease is None:
        holder = StackLock.of(paths).holder()       # who leads: pid, command, host, since
    with lease: ...                                 # released at the end (and by the OS if we die)
    lease = StackLock.of(paths).wait_lead("watch", timeout_s=600)   # a follower that takes over

The lock is an flock on <state dir>/<stack>/lock (close-on-exec: no child keeps it after we die); the
file also says who holds it, for the follower's message. The lock guards this machine's runners;
the pod's own launch lock (.runner/launch.lock) keeps two launches on one pod apart wherever they come from.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from runner.paths import StatePaths


@dataclass(frozen=True)
class Holder:
    """Who leads the stack now."""

    pid: int
    command: str  # "train", "watch", ...
    host: str
    since: str  # UTC, ISO 8601

    def describe(self) -> str:
        return f"`runner {self.command}` (pid {self.pid} on {self.host}, since {self.since})"


class Lease:
    """The lock, held: release() (or the end of a `with` block, or this process's end) lets it go."""

    def __init__(self, lock: StackLock, fd: int, holder: Holder):
        self.lock, self.holder, self._fd = lock, holder, fd

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        if self._fd >= 0:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = -1

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StackLock:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def of(cls, paths: StatePaths) -> StackLock:
        return cls(paths.lock)

    def _open(self) -> int:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def try_lead(self, command: str) -> Lease | None:
        """The lock for this process, or None when another process leads. OSError when the lock file
        cannot be created (the caller decides: a runner that cannot lock still runs, and says so)."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return None
            raise
        holder = Holder(
            os.getpid(), command, socket.gethostname(), datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(asdict(holder)) + "\n").encode(), 0)
        except OSError:
            pass  # the lock is ours all the same; a follower just cannot say who holds it
        return Lease(self, fd, holder)

    def wait_lead(self, command: str, *, timeout_s: float, poll_s: float = 1.0) -> Lease | None:
        """try_lead() until it succeeds or timeout_s passed (a follower taking over from a leader that ended)."""
        deadline = time.monotonic() + timeout_s
        while True:
            lease = self.try_lead(command)
            if lease is not None or time.monotonic() >= deadline:
                return lease
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))

    def holder(self) -> Holder | None:
        """Who leads now; None when nobody does (or the holder could not say who it is)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None  # nobody holds it exclusively
            except OSError:
                pass
            raw = os.pread(fd, 4096, 0)
        finally:
            os.close(fd)
        try:
            data = json.loads(raw)
            return Holder(int(data["pid"]), str(data["command"]), str(data["host"]), str(data["since"]))
        except (ValueError, KeyError, TypeError):
            return None


__all__ = ["Holder", "Lease", "StackLock"]
