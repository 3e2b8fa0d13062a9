"""The pretend pod's "container" processes: everything started from a test's (or benchmark's) directory.

A preemption kills the container, not the SSH sessions' own programs, so callers spare the runner's
`tail` log followers (they go when the sessions drop) and sshd.
"""
from __future__ import annotations

import os
from pathlib import Path


def processes_under(root: Path | str, *, spare: tuple[str, ...] = ()) -> list[int]:
    """PIDs (not this process) whose command line names a path under `root`, except programs named in `spare`."""
    needle = (str(root).rstrip(os.sep) + os.sep).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
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
