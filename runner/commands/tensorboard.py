"""`runner tensorboard`: its flags and help. The work is in runner.companions.tensorboard, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import add_pod_arguments, port

NAME = "tensorboard"
POD_CHOICE = "ask"  # runner/pod/choice.py: which pod of a stack with several
IMPLEMENTATION = "runner.companions.tensorboard"
SUMMARY = "open TensorBoard for the run (SSH tunnel; pod stopped: served here from the volume via S3)"
DESCRIPTION = """\
Start TensorBoard on the pod (its own tmux session, bound to the pod's 127.0.0.1, on the
config's logging_dir) unless it already runs, forward a local port to it over SSH and
print the URL. Runs until Ctrl-C, which closes the tunnel and leaves TensorBoard running
on the pod (--stop-remote stops it too). Does not start a stopped pod: with RunPod's S3
API keys set, it fetches the run's event files from the volume into a local cache and runs
TensorBoard on this machine instead (needs `pip install tensorboard` here)."""
EXAMPLES = (
    "python -m runner tensorboard                # http://localhost:6006 (or the next free port)",
    "python -m runner tensorboard --port 16006   # exactly this port, or an error if it is busy",
    "python -m runner tensorboard --config configs/baseline_whisper_small.yaml",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_pod_arguments(p, run=True, what="")
    p.add_argument(
        "--port",
        type=port,
        default=None,
        metavar="N",
        help="local port; default 6006, or the next free one if 6006 is taken",
    )
    p.add_argument(
        "--config", metavar="PATH", help="training config whose logging_dir to show (default: the current run's config)"
    )
    p.add_argument("--stop-remote", action="store_true", help="also stop TensorBoard on the pod on Ctrl-C")
