"""`runner doctor`: its flags and help. The work is in runner.doctor.report, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.exitcodes import ExitCode

NAME = "doctor"
IMPLEMENTATION = "runner.doctor.report"
SUMMARY = "check everything the first run needs, spending nothing"
DESCRIPTION = f"""\
Check, before any money is spent, everything a run needs: .runpod.env (found, private), the SSH
key (loads, and its public half is the one the stack gives the pod), the Pulumi CLI, the stack,
its passphrase and outputs, the RunPod API key (one read), the GPU type with its stock and prices
in the volume's data center (spot against bidPerGpu, on-demand against maxOnDemandPricePerGpu),
the spot API, the volume, the pod's state, REPO_URL and its branch (`git ls-remote`), and the
training configs' output_dir. One line per check: ok, warn, FAIL (with the fix) or skip (an earlier
check failed). Read-only: never creates, starts or resumes anything.
Exits 0 when nothing failed, {ExitCode.CHECK_FAILED:d} when a check failed."""
EXAMPLES = (
    "python -m runner doctor",
    "python -m runner doctor --config configs/baseline_whisper_small.yaml",
    "python -m runner doctor --json | jq '.checks[] | select(.status == \"fail\")'",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object {ok, exit_code, checks: [...]}")
    p.add_argument(
        "--config", metavar="PATH", default=None, help="the training config to check (default: every configs/*.yaml)"
    )
