"""This project's tmux session on the pod (RT_SESSION): is it ours, is it running, start it.

A session we started carries the user option @rt_owner=remote_train, and @rt_token=<the launch's
token>, which the supervisor's plan must carry too (launch.py). tmux runs the session's command
through a shell, so the command is built with shlex.join from an argument list.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from typing import List, NamedTuple, Optional, Tuple

SESSION_OWNER_OPTION, SESSION_OWNER = "@rt_owner", "remote_train"
SESSION_TOKEN_OPTION = "@rt_token"
RUNNING, NONE, FINISHED, FOREIGN = "running", "none", "finished", "foreign"


class Session(NamedTuple):
    status: str  # RUNNING | NONE | FINISHED | FOREIGN
    token: Optional[str] = None  # the launch token it was started with (None: none, or an older launcher's)
    pid: Optional[int] = None  # its pane's process: the supervisor (exec'd by the pane's shell)


def _tmux(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["tmux", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=(),
    )


def probe(session: str) -> Session:
    """The session's status, token and pane pid, from one tmux process."""
    if not shutil.which("tmux"):
        return Session(NONE)
    proc = _tmux(
        "list-panes",
        "-t",
        f"={session}:",
        "-F",
        f"#{{pane_dead}} #{{pane_pid}} #{{{SESSION_OWNER_OPTION}}} #{{{SESSION_TOKEN_OPTION}}}",
    )
    if proc.returncode != 0:
        return Session(NONE)
    rows = [line.split(" ") for line in proc.stdout.splitlines() if line.strip()]
    if not rows:
        return Session(NONE)
    owner, token = rows[0][2:3], rows[0][3:4]
    if owner != [SESSION_OWNER]:
        return Session(FOREIGN)
    pid = int(rows[0][1]) if rows[0][1].isdigit() else None
    dead = {row[0] for row in rows}
    return Session(FINISHED if dead == {"1"} else RUNNING, token[0] if token and token[0] else None, pid)


def status(session: str) -> str:
    """running (ours, alive) | none | finished (ours, only dead panes left) | foreign."""
    return probe(session).status


def kill(session: str) -> None:
    _tmux("kill-session", "-t", f"={session}")


def start(session: str, cwd: str, argv: List[str], token: str) -> Tuple[Optional[int], Optional[str]]:
    """Start a detached session running argv in cwd and mark it ours: (its pane's pid, None), or
    (None, tmux's error)."""
    # One tmux command list, so the server creates and marks the session together: a launcher killed
    # in between (its SSH session dropped) must not leave an unmarked session that looks foreign.
    proc = _tmux(
        "new-session",
        "-d",
        "-P",
        "-F",
        "#{pane_pid}",
        "-s",
        session,
        "-c",
        cwd,
        "exec " + shlex.join(argv),
        ";",
        "set-option",
        "-t",
        f"={session}:",
        SESSION_OWNER_OPTION,
        SESSION_OWNER,
        ";",
        "set-option",
        "-t",
        f"={session}:",
        SESSION_TOKEN_OPTION,
        token,
    )
    if proc.returncode != 0:
        return None, (proc.stderr or proc.stdout).strip() or f"tmux exited {proc.returncode}"
    first = (proc.stdout.split() or [""])[0]
    return (int(first) if first.isdigit() else None), None
