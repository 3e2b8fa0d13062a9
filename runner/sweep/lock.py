"""Who decides for a sweep: an flock on <state dir>/<stack>/sweeps/<id>.lock (next to its record).

`runner sweep` (start or --resume) holds it for as long as it drives the sweep; a watcher takes it, without
waiting, only to choose a queued run, mark it running on a pod and start it (runner/sweep/unattended.py),
so two watchers never start one run twice and no watcher starts anything while a driver runs. The file
says who holds it (pid and command) for the other party's message. The OS lets it go when the holder dies.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from runner.paths import StatePaths
from runner.sweep.record import sweeps_dir


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str  # "sweep" (a driver) or "watch"

    def describe(self) -> str:
        return f"`runner {self.command}` (pid {self.pid})"


def lock_path(paths: StatePaths, sweep_id: str):
    return sweeps_dir(paths) / f"{sweep_id}.lock"


def holder(paths: StatePaths, sweep_id: str) -> Holder | None:
    """Who holds the sweep's lock now (None: nobody)."""
    with holding(paths, sweep_id, "status") as mine:
        if mine:
            return None
    deadline = time.monotonic() + 2.0
    while True:
        try:
            data = json.loads(lock_path(paths, sweep_id).read_text())
            return Holder(int(data["pid"]), str(data["command"]))
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return Holder(-1, "sweep")  # held, and its holder never written
            time.sleep(0.05)  # it writes itself right after taking the lock


@contextmanager
def holding(paths: StatePaths, sweep_id: str, command: str, *, wait_s: float = 0.0) -> Iterator[bool]:
    """True while this process holds the sweep's lock (tried for up to wait_s), False when another does.
    command "status" (a look, not a decision) does not write itself into the file."""
    path = lock_path(paths, sweep_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.2)
        if command != "status":
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command}).encode(), 0)
        yield True
    finally:
        os.close(fd)


__all__ = ["Holder", "holder", "holding", "lock_path"]
