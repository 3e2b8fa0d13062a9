"""`runner demo`: the no-cloud demo lives with the stand-ins (standins/demo.py), a distribution of its
own (runpod-trainer-standins) so the user's wheel carries no test doubles; this says how to add it."""

from __future__ import annotations

import argparse

from runner.errors import UsageError
from runner.settings import Settings

MISSING = (
    "the demo needs the stand-ins package (a fake RunPod API, an sshd playing the pod, a stub pulumi), "
    "installed separately so the runner itself carries no test doubles. From a clone of runpod-trainer: "
    "`pipx inject runpod-trainer ./standins` (or `pip install ./standins` in the runner's environment), "
    "or run `bash scripts/demo.sh` there."
)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from standins import demo
    except ModuleNotFoundError as e:
        if e.name != "standins":
            raise
        raise UsageError(MISSING) from None
    return demo.main(["--keep"] if args.keep else [])
