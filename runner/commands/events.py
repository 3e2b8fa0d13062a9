"""`runner events`: its flags and help. The work is in runner.companions.events, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import add_pod_arguments, run_id

NAME = "events"
POD_CHOICE = "ask"  # runner/pod/choice.py: which pod of a stack with several
IMPLEMENTATION = "runner.companions.events"
SUMMARY = "the run's timeline: started, preempted, recovered, finished... with their times"
DESCRIPTION = """\
Print every event of a run with its time: started, preempted, recovering, recovered, finished,
failed, stalled, budget-reached, idle-stopped, waiting-for-capacity, gave-up. The pod's own events
are on the volume (read over SSH while it runs, through RunPod's S3 API while it is stopped, when the
S3 keys are set); this machine's runner and watcher keep theirs in the state directory. Both are
merged by event id, so each event shows once. The same records feed the notifications (NOTIFY_URL).
Never starts the pod."""
EXAMPLES = (
    "python -m runner events                 # the pod's current run",
    "python -m runner events --run whisper-1 --json",
    "python -m runner events -f              # keep printing new events until Ctrl-C",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_pod_arguments(p, run=False, what="")
    p.add_argument(
        "--run",
        type=run_id,
        metavar="ID",
        help="the run (default: the one the volume names, else the last one started here)",
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events until Ctrl-C")
    p.add_argument(
        "--json", action="store_true", help="one JSON object a line (the notification's fields, with id and source)"
    )
