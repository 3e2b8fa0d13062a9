"""Every exit code the runner returns, defined once. The top-level `--help`, the reference page
(docs/reference/exit-codes.md, rendered from this module) and runner/errors.py's constants all come
from here.

The runner's own outcomes are 0, 130 and the reserved range 101-107 (the first digit says "the
runner", the last the category). `train` otherwise exits with training's own exit code, unchanged,
so a script tells them apart by the value alone:

    0        success (train: training exited 0)
    101-107  the runner failed (no training result, or none it could wait for)
    130      interrupted
    other    training's own exit code (train only)

A training script that itself exits with 101-107 is the one case the value cannot settle: the
final `[runner]` line, the run record and `status --json` (`training.result`) say which it was.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 101
    USAGE = 102
    STACK = 103
    POD = 104
    API = 105
    SSH = 106
    CHECK_FAILED = 107
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success (train: training exited 0)",
    ExitCode.FAILED: "the runner failed otherwise: a tool it ran failed (e.g. rsync), a live check failed",
    ExitCode.USAGE: "bad input: arguments, settings (.runpod.env), the training config, a launcher refusal",
    ExitCode.STACK: "Pulumi: CLI missing, no such stack, no outputs yet (`pulumi up`), `pulumi up` failed",
    ExitCode.POD: "the pod: gone, preempted with no recovery left, stopped under a run, no GPU capacity, "
    "spot withdrawn, budget reached, not reachable in time",
    ExitCode.API: "the RunPod API: key rejected, API unavailable, S3 API refused",
    ExitCode.SSH: "SSH: cannot connect or authenticate, link lost for good",
    ExitCode.CHECK_FAILED: "doctor: at least one check failed (each FAIL line says the fix)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); whatever already runs on the pod keeps running",
}

RUNNER_FAILURES = range(ExitCode.FAILED, ExitCode.CHECK_FAILED + 1)
TRAINING_PASSTHROUGH = "train otherwise exits with training's own exit code, unchanged."


def is_runner_failure(code: int) -> bool:
    """True for the runner's own failure codes (101-107), as opposed to success, Ctrl-C or training's code."""
    return code in RUNNER_FAILURES


def help_text() -> str:
    """The block at the end of the top-level `--help`."""
    rows = [f"  {int(code):<4} {code.meaning}" for code in ExitCode]
    return "\n".join(["exit codes:", *rows, f"  {TRAINING_PASSTHROUGH}"])


def markdown_table() -> str:
    """The table on the reference page (docs/hooks/generated.py puts it there)."""
    rows = [f"| {int(code)} | `{code.name}` | {code.meaning} |" for code in ExitCode]
    return "\n".join(["| code | name | meaning |", "|---|---|---|", *rows])
