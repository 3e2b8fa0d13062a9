"""`runner status`: its flags and help. The work is in runner.companions.status, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import add_pod_arguments

NAME = "status"
POD_CHOICE = "all"  # runner/pod/choice.py: which pod of a stack with several
IMPLEMENTATION = "runner.companions.status"
SUMMARY = "show the pod, the current run and what it costs"
DESCRIPTION = """\
Show the pod's state (running, starting, preempted, stopped, gone), its SSH endpoint,
cost per hour, and the current run's progress. Read-only: never starts anything. With the
pod stopped and RunPod's S3 API keys set, the run's state and log come from the volume."""
EXAMPLES = (
    "python -m runner status",
    "python -m runner status --json | jq .pod.state",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_pod_arguments(p, run=True, what="default: every pod and its run in one table")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
