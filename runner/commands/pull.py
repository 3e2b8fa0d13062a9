"""`runner pull`: its flags and help. The work is in runner.companions.pull, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import add_pod_arguments

NAME = "pull"
POD_CHOICE = "ask"  # runner/pod/choice.py: which pod of a stack with several
IMPLEMENTATION = "runner.companions.pull"
SUMMARY = "bring results home: the newest complete checkpoint, any path on the volume, the log"
DESCRIPTION = """\
Copy from the network volume to this machine. Without PATH: the newest complete checkpoint
of the last run (or of --config's output_dir), never a partial one (the completeness rule
training resumes with). PATH: any file or folder on the volume (/workspace/... or relative to
it). --log: the run's log. DEST (default: the current directory) receives it under its own
name. Through RunPod's S3 API with the pod stopped when RUNPOD_S3_ACCESS_KEY/SECRET_KEY are
set, else over SSH from a running pod (this command never starts the pod). Sizes are checked;
an interrupted pull continues where it stopped when run again."""
EXAMPLES = (
    "python -m runner pull                                   # ./checkpoint-<newest complete>",
    "python -m runner pull --config configs/baseline_whisper_small.yaml --dest models/",
    "python -m runner pull /workspace/outputs/run1/checkpoint-500 ./ckpt",
    "python -m runner pull --log",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_pod_arguments(p, run=True, what="")
    p.add_argument(
        "path", nargs="?", metavar="PATH", help="file or folder on the volume (default: the newest complete checkpoint)"
    )
    p.add_argument("dest", nargs="?", metavar="DEST", default=None, help="local folder to put it in (default: .)")
    p.add_argument(
        "--dest",
        dest="dest_opt",
        metavar="DEST",
        default=None,
        help="same as DEST, for the default checkpoint (no PATH)",
    )
    p.add_argument("--config", metavar="PATH", help="take the checkpoint from this training config's output_dir")
    p.add_argument("--log", action="store_true", help="pull the run's log (logs/current.log); `--log DEST` works")
    p.add_argument(
        "--via",
        choices=("s3", "ssh"),
        default=None,
        help="force the path: s3 (no pod) or ssh (running pod); default: s3 when available",
    )
