"""`python -m runner train` (runner/commands/train.py): the stack's pod is reached while the runner
still starts up, then the session runs.

For the stack's pod (no --host, no --local) the API read and the SSH connection start in the
background (runner/pod/early_link.py) before the rest of the runner is imported and the pre-launch
checks run, so the waiting on RunPod and on the pod's sshd overlaps that work instead of following it.
"""
from __future__ import annotations

import argparse

from runner.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    early = None
    if not getattr(args, "local", False) and getattr(args, "host", None) is None:
        from runner.pod.early_link import EarlyLink

        early = EarlyLink.start(settings)
    try:
        from runner.train import session

        return session.run(args, settings, early=early)
    finally:
        if early is not None:
            early.discard()


__all__ = ["run"]
