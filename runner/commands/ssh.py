"""`runner ssh`: its flags and help. The work is in runner.companions.ssh, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import add_pod_arguments

NAME = "ssh"
POD_CHOICE = "ask"  # runner/pod/choice.py: which pod of a stack with several
IMPLEMENTATION = "runner.companions.ssh"
SUMMARY = "open an interactive shell on the pod (or run one command)"
DESCRIPTION = """\
SSH into the running pod with the key from SSH_KEY_PATH, using its current endpoint
(the public port changes on every start) and a pinned host key. Anything after `--` is
run on the pod instead of a shell. Does not start a stopped pod."""
EXAMPLES = (
    "python -m runner ssh",
    "python -m runner ssh -- nvidia-smi",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_pod_arguments(p, run=True, what="")
    p.add_argument(
        "remote_command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND",
        help="a command to run on the pod instead of an interactive shell",
    )
