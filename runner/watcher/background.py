"""The watcher a detached `runner train` leaves on this machine, and how it is found and stopped.

    <state dir>/<stack>/watch.lock   flock held by the running watcher for its whole life (one per stack)
    <state dir>/<stack>/watch.pid    its pid
    <state dir>/<stack>/watch.log    what it did (timestamped lines)

It is `python -m runner watch --background`, started in a session of its own (setsid: it survives the
terminal closing and the runner's process group being killed), in the project's directory with the same
settings; it ends by itself once no run of the stack is unfinished. RUNNER_WATCH=0 (or `train
--no-watch`) turns it off; `runner watch --stop` stops it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.paths import StatePaths, write_private
from runner.settings import Settings

OPT_OUT = "RUNNER_WATCH"


def _files(paths: StatePaths) -> tuple[Path, Path, Path]:
    paths.ensure()
    return _files_where(paths)


def _files_where(paths: StatePaths) -> tuple[Path, Path, Path]:
    d = paths.pod_dir
    return d / "watch.lock", d / "watch.pid", d / "watch.log"


@contextmanager
def _the_lock(lock: Path) -> Iterator[bool]:
    """The watcher's flock, tried once: True while this process holds it."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def running_pid(paths: StatePaths) -> int | None:
    """The pid of this stack's running watcher, or None."""
    lock, pid_file, _ = _files(paths)
    with _the_lock(lock) as free:
        if free:
            return None
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return -1  # held, but its pid is not written yet


@contextmanager
def holding(paths: StatePaths) -> Iterator[bool]:
    """In the watcher: True while this process is the stack's one watcher (False: another one is)."""
    lock, pid_file, _ = _files(paths)
    with _the_lock(lock) as mine:
        if not mine:
            yield False
            return
        write_private(pid_file, f"{os.getpid()}\n")
        try:
            yield True
        finally:
            pid_file.unlink(missing_ok=True)


def still_guarded(paths: StatePaths) -> bool:
    """In the watcher: its lock file is still there. Deleted with the stack's state directory, it no
    longer keeps a second watcher out, and nothing of this machine's is left to recover: time to end."""
    lock, _, _ = _files_where(paths)
    return lock.exists()


def spawn(settings: Settings) -> tuple[int, Path] | None:
    """Start the stack's watcher unless one runs or the user opted out: (its pid, its log), or None."""
    if os.environ.get(OPT_OUT, "").strip() == "0":
        return None
    paths = settings.paths
    _, _, log = _files(paths)
    pid = running_pid(paths)
    if pid is not None:
        return pid, log
    argv = [sys.executable, "-m", "runner", "--stack", settings.stack]
    if settings.env_file is not None:
        argv += ["--env-file", str(settings.env_file)]
    argv += ["watch", "--background", *(["--pod", settings.pod] if settings.pod else [])]  # one watcher per pod
    with open(log, "ab", buffering=0) as out:
        os.chmod(log, 0o600)
        proc = subprocess.Popen(
            argv,
            cwd=settings.project_root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # its own session: the terminal and the runner's process group may go
            close_fds=True,
        )
    # Until it holds the stack's watcher lock, a second spawn could start another one: wait for that.
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline and proc.poll() is None and running_pid(paths) in (None, -1):
        time.sleep(0.05)
    return proc.pid, log


def leave_a_watcher(settings: Settings, stack_flag: str = "") -> str:
    """Nobody follows the run now: start a watcher on this machine; the line that says so (and how to stop it)."""
    try:
        started = spawn(settings)
    except OSError as e:
        return f"warning: could not start a background watcher ({e.strerror}); nothing recovers this run"
    if started is None:
        return f"no background watcher ({OPT_OUT}=0): a preemption waits for `python -m runner watch`"
    pid, log = started
    return (
        f"a background watcher (pid {pid}, log {log}) recovers this run after a preemption while this machine "
        f"is on; `python -m runner watch --stop{stack_flag}` stops it, {OPT_OUT}=0 or --no-watch goes without"
    )


def stop(paths: StatePaths, *, wait_s: float = 15.0) -> int | None:
    """Stop the stack's watcher: its pid, or None when none runs."""
    pid = running_pid(paths)
    if pid is None:
        return None
    if pid > 0:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return pid
    deadline = time.monotonic() + wait_s
    while running_pid(paths) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    return pid


def stop_all(state_dir: Path, *, wait_s: float = 5.0) -> list[int]:
    """Stop every watcher under a state directory (each stack's, each pod's): their pids. For a world
    being torn down (the bench's, a test's), whose watchers would go on asking an API that is gone."""
    stopped: list[int] = []
    stacks = [p for p in state_dir.iterdir() if p.is_dir()] if state_dir.is_dir() else []
    for stack_dir in stacks:
        slots = ["", *(p.name for p in (stack_dir / "pods").glob("*") if p.is_dir())]
        for slot in slots:
            pid = stop(StatePaths(state_dir, stack_dir.name, slot), wait_s=wait_s)
            if pid:
                stopped.append(pid)
    return stopped


__all__ = ["OPT_OUT", "holding", "leave_a_watcher", "running_pid", "spawn", "still_guarded", "stop", "stop_all"]
