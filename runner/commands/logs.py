"""`runner logs`: its flags and help. The work is in runner.companions.logs, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import add_pod_arguments, non_negative_int

NAME = "logs"
POD_CHOICE = "ask"  # runner/pod/choice.py: which pod of a stack with several
IMPLEMENTATION = "runner.companions.logs"
SUMMARY = "print the training log from the pod (pod stopped: from the volume via S3)"
DESCRIPTION = """\
Print the end of the current training log (/workspace/logs/current.log) from the pod.
With -f keep following it, across reconnects, until Ctrl-C. With the pod stopped and RunPod's
S3 API keys set, the log is read from the volume through S3 instead (no pod is started)."""
EXAMPLES = (
    "python -m runner logs",
    "python -m runner logs -n 200",
    "python -m runner logs -f",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_pod_arguments(p, run=True, what="")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    p.add_argument(
        "-n",
        "--lines",
        type=non_negative_int,
        default=100,
        metavar="N",
        help="how many lines from the end to print first (default: 100)",
    )
