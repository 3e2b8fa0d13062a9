"""The launcher -> supervisor handoff: the supervisor starts in tmux while the launcher still works.

Right after the launch lock and the session check the launcher starts the tmux session with
`supervise ./supervise.json <token> <launcher pid>`; the supervisor imports what it needs and waits.
The launcher then gets the code, reads the config, scans the checkpoints, writes the header and the
state, and last the plan (.runner/supervise.json) carrying the same token: the supervisor proceeds
the moment that plan is there. A plan with another token (an earlier launch's) is never acted on.

When the launcher fails after the early start it kills the session and waits for the supervisor to
be gone (abandon); when it is killed (its SSH session dropped, SIGKILL) the supervisor sees its pid
gone without a plan and gives up by itself, ending the session. Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from . import record, tmuxsession
from .contract import PlanKey, StateKey

PLAN_POLL_S = 0.004  # a stat() per poll; the plan is written once, atomically
PLAN_WAIT_S = 3600.0  # bound on the wait even while the launcher lives (a huge clone)
GONE_WAIT_S = 5.0
SUPERVISOR_WAIT_S = 15.0  # for the supervisor to take the plan


def new_token() -> str:
    return os.urandom(8).hex()


def alive(pid: Optional[int]) -> bool:
    """pid exists and is not a zombie (the launcher is not our parent: its own parent reaps it)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: kill(0) said it exists


def read_plan(path: str, token: str) -> Optional[Dict[str, Any]]:
    """The plan at path if it carries token, else None (missing, unreadable, another launch's)."""
    try:
        with open(path, encoding="utf-8") as fh:
            plan = json.load(fh)
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and plan.get(PlanKey.TOKEN) == token else None


def await_plan(
    path: str, token: str, launcher_pid: int, *, wait_s: float = PLAN_WAIT_S, poll_s: float = PLAN_POLL_S
) -> Optional[Dict[str, Any]]:
    """The launcher's plan for this token, as soon as it is written; None when the launcher is gone
    without one (or after wait_s)."""
    deadline = time.monotonic() + wait_s
    seen: Optional[Tuple[int, int, int]] = None
    while True:
        try:
            st = os.stat(path)
            stamp: Optional[Tuple[int, int, int]] = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp is not None and stamp != seen:
            seen = stamp
            plan = read_plan(path, token)
            if plan is not None:
                return plan
        if not alive(launcher_pid):
            return read_plan(path, token)  # written just before it went: still ours
        if time.monotonic() > deadline:
            return None
        time.sleep(poll_s)


def is_waiting_orphan(session: tmuxsession.Session, plan_path: str) -> bool:
    """A session of ours whose supervisor still waits for a plan that never came: its launcher died
    (the caller holds the launch lock that launcher held). An older launcher's session (no token) never is."""
    return (
        session.status == tmuxsession.RUNNING
        and session.token is not None
        and read_plan(plan_path, session.token) is None
    )


def abandon(session_name: str, pid: Optional[int], wait_s: float = GONE_WAIT_S) -> None:
    """End the early-started session and wait until its supervisor is gone (SIGKILL if it lingers)."""
    tmuxsession.kill(session_name)
    if not _wait_gone(pid, wait_s) and pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        _wait_gone(pid, wait_s)


def _wait_gone(pid: Optional[int], wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def supervisor_argv(program: str, runner_dir: str, plan: str, token: str) -> List[str]:
    """Run from runner_dir; paths inside it are given relative (a short, readable tmux command).
    The supervisor waits for the plan that carries token, while this launcher (pid) lives."""

    def short(path: str) -> str:
        rel = os.path.relpath(path, runner_dir)
        return path if rel.startswith("..") else "./" + rel

    return [sys.executable, short(program), "supervise", short(plan), token, str(os.getpid())]


def await_supervisor(state_file: str, pid: Optional[int], wait_s: float = SUPERVISOR_WAIT_S) -> bool:
    """The supervisor took the plan (it records its pid first); False if it died or took too long."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if isinstance((record.load(state_file) or {}).get(StateKey.SUPERVISOR_PID), int):
            return True
        if pid is not None and not alive(pid):
            return isinstance((record.load(state_file) or {}).get(StateKey.SUPERVISOR_PID), int)
        time.sleep(0.01)
    return False
