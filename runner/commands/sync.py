"""`runner sync`: its flags and help. The work is in runner.companions.sync, imported only when it runs."""
from __future__ import annotations

import argparse

NAME = "sync"
IMPLEMENTATION = "runner.companions.sync"
SUMMARY = "upload a local data directory to the network volume (rsync over SSH)"
DESCRIPTION = """\
Copy PATH (default: DATA_DIR from settings, i.e. ./data) to the network volume under
/workspace, with rsync over SSH. Only changed files are sent, so it is cheap to repeat.
Starts the pod if it is stopped and stops it again afterwards unless --keep-running."""
EXAMPLES = (
    "python -m runner sync                       # upload ./data",
    "python -m runner sync data/audio_0 --dry-run",
    "python -m runner sync --delete --keep-running",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", metavar="PATH", help="local directory to upload (default: DATA_DIR)")
    p.add_argument("--dry-run", action="store_true", help="list what would be transferred, change nothing")
    p.add_argument("--delete", action="store_true", help="delete remote files that are not present locally")
    p.add_argument("--keep-running", action="store_true", help="leave the pod running afterwards")
