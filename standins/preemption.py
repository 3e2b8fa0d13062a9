"""Preemption of the pretend pod: finding its "container" processes and killing them as RunPod does.

The container is everything started from a test's (or benchmark's) directory, except what the runner
started on the user's side (its `pulumi`, git, rsync and ssh clients: `runner_side`), which a
preemption never reaches. A preemption kills the container, not the SSH sessions' own programs, so
callers spare the runner's `tail` log followers (they go when the sessions drop) and sshd. The rest of a preemption is the caller's:
the SSH sessions dying (Sshd.drop_connections) and the API showing the pod outbid (FakeRunPod.preempt).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

SIGTERM_GRACE_S = 5.0  # what RunPod (Docker) gives the container between SIGTERM and SIGKILL


def processes_under(root: Path | str, *, spare: tuple[str, ...] = (), spare_pids: Collection[int] = ()) -> list[int]:
    """PIDs (not this process) whose command line names a path under `root`, except programs named in
    `spare` and the pids in `spare_pids`."""
    needle = (str(root).rstrip(os.sep) + os.sep).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or int(entry.name) in spare_pids:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # sshd rewrites its title to one string ("sshd: /usr/sbin/sshd -D … [listener]"): take the first word.
        first = argv[0].decode(errors="replace").split(" ")[0].rstrip(":") if argv else ""
        program = os.path.basename(first)
        if program in spare:
            continue
        if needle in b" ".join(argv):
            pids.append(int(entry.name))
    return sorted(pids)


def descendants(root_pid: int) -> list[int]:
    """All live descendants of root_pid (children first discovered, then theirs), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # comm may contain spaces/parens: fields after the last ')' are positional
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if state != "Z":
            children.setdefault(ppid, []).append(int(entry))
    result, todo = [], [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            result.append(child)
            todo.append(child)
    return result


def runner_side(pod_sshd_pid: int | None) -> set[int]:
    """What this process (the runner, in a test) started itself rather than through the pod's sshd:
    its `pulumi`, git, rsync and ssh clients. They name the test's directory too, but run on the
    user's machine, where a preemption does not reach."""
    pod = set(descendants(pod_sshd_pid)) if pod_sshd_pid else set()
    return set(descendants(os.getpid())) - pod - {pod_sshd_pid or 0}


def pid_alive(pid: object) -> bool:
    """Whether pid (an int; anything else, e.g. a missing state.json entry, is not) is a live process."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_container(
    supervisor_pid: object,
    others: Callable[[], Iterable[int]],
    *,
    sigterm: bool = True,
    grace_s: float = SIGTERM_GRACE_S,
) -> None:
    """The container dies: SIGTERM to the supervisor (it records "preempted" and writes the footer)
    and up to grace_s for it to exit, as on RunPod, then SIGKILL for every pid of others() (asked
    after the SIGTERM, so it sees what the supervisor left). sigterm=False: SIGKILL straight away,
    Docker did not wait."""
    if sigterm and pid_alive(supervisor_pid):
        os.kill(supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while pid_alive(supervisor_pid) and time.monotonic() <= deadline:
            time.sleep(0.02)  # RunPod does not wait longer either
    for pid in others():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
