"""`runner stop`: its flags and help. The work is in runner.companions.stop, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import add_pod_arguments

NAME = "stop"
POD_CHOICE = "ask"  # runner/pod/choice.py: which pod of a stack with several
IMPLEMENTATION = "runner.companions.stop"
SUMMARY = "stop the pod now (the network volume keeps your data)"
DESCRIPTION = """\
Stop the stack's pod through the RunPod API. Compute billing stops; the network
volume (checkpoints, data, venv) stays and keeps its small storage charge. Safe to
repeat: an already stopped or deleted pod is reported, not an error. Training on the
pod is interrupted; `runner train` later resumes from the last checkpoint."""
EXAMPLES = (
    "python -m runner stop",
    "python -m runner stop --stack prod",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_pod_arguments(p, run=True, what="")
    pass  # no flags of its own
