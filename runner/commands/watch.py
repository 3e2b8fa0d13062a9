"""`runner watch`: its flags and help. The work is in runner.watcher.command, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import add_pod_arguments, positive_seconds

NAME = "watch"
POD_CHOICE = "ask"  # runner/pod/choice.py: which pod of a stack with several
IMPLEMENTATION = "runner.watcher.command"
SUMMARY = "recover the stack's run with no terminal attached (a loop, or one pass for cron)"
DESCRIPTION = """\
Look after the newest unfinished run of the stack started from this machine, through RunPod's
API only (no SSH): when RunPod's own answers say the pod is not up, consistently (two answers at
least 20 s apart; an API error or timeout never counts), recover it as `runner train` would
(resume by bid, replace through the stack when it cannot be resumed, on-demand by the stack's
policy) within the run's own limits (--max-recoveries, --budget-usd of its `runner train`), and
relaunch it detached from its newest complete checkpoint. A stop by you is never undone.

Every pass also moves on the stack's sweeps that no `runner sweep` drives (Ctrl-C, a closed
terminal): it records how their runs ended and starts their queued runs on free pods, detached,
within each sweep's concurrency, stop and budget.

Without --once it loops (for systemd, launchd, a container or tmux) and ends when no run is left
unfinished. A detached `runner train` starts one in the background itself (RUNNER_WATCH=0 or
`train --no-watch`: not); --stop stops that one. Only one party recovers a given interruption:
an attached `runner train` and several watchers on this machine take turns (the first brings
the pod back, the others find it running)."""
EXAMPLES = (
    "python -m runner watch                  # loop every 15 s until the run ends",
    "python -m runner watch --once           # one pass, e.g. from cron every minute",
    "python -m runner watch --stop           # stop the background watcher of a detached run",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_pod_arguments(p, run=True, what="")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one pass, then exit (cron, a CI scheduler)")
    mode.add_argument("--stop", action="store_true", help="stop this stack's background watcher")
    mode.add_argument("--background", action="store_true", help=argparse.SUPPRESS)  # the one `train` starts
    p.add_argument(
        "--poll",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds between two looks at the pod (default: WATCH_POLL_SECONDS, 15)",
    )
    p.add_argument(
        "--confirm",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="how long RunPod's answers must agree that the pod is down before recovering "
        "(default: WATCH_CONFIRM_SECONDS, 20; two answers at least)",
    )
