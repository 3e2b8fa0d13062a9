"""`runner ssh-config`: its flags and help. The work is in runner.companions.ssh, imported only when it runs."""

from __future__ import annotations

import argparse

NAME = "ssh-config"
IMPLEMENTATION = "runner.companions.ssh"
SUMMARY = "print an ~/.ssh/config entry for the pod"
DESCRIPTION = """\
Print a Host block for the pod's current endpoint, for ssh, scp, rsync or VS Code
Remote-SSH. The port changes whenever the pod starts, so prefer --write: it keeps a file
in the runner's state directory current, which ~/.ssh/config includes once."""
EXAMPLES = (
    "python -m runner ssh-config --write   # then add the printed Include line to ~/.ssh/config once",
    "python -m runner ssh-config && ssh runpod-dev",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--write", action="store_true", help="write the block to the state directory's ssh_config (for an Include line)"
    )
