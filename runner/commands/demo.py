"""`runner demo`: its flags and help. The work is in runner.demo, imported only when it runs."""

from __future__ import annotations

import argparse

NAME = "demo"
IMPLEMENTATION = "runner.demo"
SUMMARY = "the whole pod flow on this machine, a preemption included (no cloud account)"
DESCRIPTION = """\
Run the real `train` against a pod played on this machine: the fake RunPod API on 127.0.0.1, a local
sshd as the pod, a stub `pulumi` with the stack outputs, and a throwaway training repo with the CPU smoke
trainer. A spot preemption is injected after the first checkpoint; the demo exits 0 when the run was
recovered, resumed from its newest complete checkpoint and the pod stopped itself. Nothing of your
settings is used. Needs sshd, ssh-keygen, tmux and git, and the stand-ins package (runpod-trainer-standins)."""
EXAMPLES = ("python -m runner demo", "python -m runner demo --keep")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", action="store_true", help="keep the demo's temp directory (workspace, log, run record)")
