"""`runner sync`: its flags and help. The work is in runner.companions.sync, imported only when it runs."""

from __future__ import annotations

import argparse

NAME = "sync"
IMPLEMENTATION = "runner.companions.sync"
SUMMARY = "upload a local data directory to the network volume (S3 without a pod, else rsync over SSH)"
DESCRIPTION = """\
Copy PATH (default: DATA_DIR from settings, i.e. ./data) to the network volume under
/workspace/data. Only changed files are sent, so it is cheap to repeat.
With RUNPOD_S3_ACCESS_KEY/RUNPOD_S3_SECRET_KEY set and the volume in a data center with
RunPod's S3 API, it goes through S3: the pod is not started and no GPU is billed.
Otherwise rsync over SSH: starts the pod if it is stopped and stops it again afterwards
unless --keep-running. --via forces one path."""
EXAMPLES = (
    "python -m runner sync                       # upload ./data",
    "python -m runner sync data/audio_0 --dry-run",
    "python -m runner sync --delete --keep-running",
    "python -m runner sync --via ssh             # rsync over the pod's SSH even when S3 is available",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", metavar="PATH", help="local directory to upload (default: DATA_DIR)")
    p.add_argument("--dry-run", action="store_true", help="list what would be transferred, change nothing")
    p.add_argument("--delete", action="store_true", help="delete remote files that are not present locally")
    p.add_argument("--keep-running", action="store_true", help="leave the pod running afterwards (SSH path)")
    p.add_argument(
        "--via",
        choices=("s3", "ssh"),
        default=None,
        help="force the path: s3 (RunPod's S3 API, no pod) or ssh (rsync; starts the pod); default: s3 when available",
    )
