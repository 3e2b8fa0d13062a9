"""This project's tmux session on the pod (RT_SESSION): is it ours, is it running, start it.

A session we started carries the user option @rt_owner=remote_train. tmux runs the session's
command through a shell, so the command is built with shlex.join from an argument list.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
from typing import List, Optional

SESSION_OWNER_OPTION, SESSION_OWNER = "@rt_owner", "remote_train"
RUNNING, NONE, FINISHED, FOREIGN = "running", "none", "finished", "foreign"


def _tmux(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, pass_fds=())


def status(session: str) -> str:
    """running (ours, alive) | none | finished (ours, only dead panes left) | foreign."""
    if not shutil.which("tmux") or _tmux("has-session", "-t", f"={session}").returncode != 0:
        return NONE
    dead = set(_tmux("list-panes", "-t", f"={session}:", "-F", "#{pane_dead}").stdout.split())
    owner = _tmux("show-options", "-v", "-t", f"={session}:", SESSION_OWNER_OPTION).stdout.strip()
    if owner != SESSION_OWNER:
        return FOREIGN
    return FINISHED if dead == {"1"} else RUNNING


def kill(session: str) -> None:
    _tmux("kill-session", "-t", f"={session}")


def start(session: str, cwd: str, argv: List[str]) -> Optional[str]:
    """Start a detached session running argv in cwd and mark it ours; None, or tmux's error."""
    # One tmux command list, so the server creates and marks the session together: a launcher killed
    # in between (its SSH session dropped) must not leave an unmarked session that looks foreign.
    proc = _tmux("new-session", "-d", "-s", session, "-c", cwd, "exec " + shlex.join(argv), ";",
                 "set-option", "-t", f"={session}:", SESSION_OWNER_OPTION, SESSION_OWNER)
    if proc.returncode != 0:
        return (proc.stderr or proc.stdout).strip() or f"tmux exited {proc.returncode}"
    return None
