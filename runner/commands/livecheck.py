"""`runner livecheck`: its flags and help. The work is in runner.livecheck.command, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.exitcodes import ExitCode

NAME = "livecheck"
IMPLEMENTATION = "runner.livecheck.command"
SUMMARY = "check the client's assumptions against the live RunPod API"
DESCRIPTION = f"""\
Ask the live RunPod API what the client assumes, and print which of the UNCONFIRMED assumptions it
confirmed, refuted or could not check. Needs only RUNPOD_API_KEY. Read-only unless --lifecycle, which
also creates the cheapest pod, reads, stops and terminates it within the --max-spend cap, and removes
everything it created even on Ctrl-C. Exits 0 when every step answered as expected and nothing was
refuted, {ExitCode.FAILED:d} when a step failed, an assumption was refuted or something was left behind."""
EXAMPLES = (
    "python -m runner livecheck",
    "python -m runner livecheck --lifecycle --max-spend 0.10",
    "python -m runner livecheck --json",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lifecycle",
        action="store_true",
        help="also create the cheapest pod, read, stop and terminate it (costs money: needs --max-spend)",
    )
    p.add_argument(
        "--max-spend",
        type=float,
        metavar="USD",
        default=None,
        help="the most the lifecycle may spend, in US dollars (e.g. 0.10); required with --lifecycle",
    )
    p.add_argument(
        "--self-stop-after",
        type=float,
        metavar="SECONDS",
        default=None,
        help="with --lifecycle: when the pod asks to stop itself with its own key, after its container starts "
        "(default 60; the check waits as long again for RunPod to show it stopped)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
