"""`runner doctor`'s work: run the checks, print one line per check (or one JSON object), exit code."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from runner.doctor import Check, Context, Status, run_checks
from runner.errors import EXIT_DOCTOR, EXIT_OK, redact
from runner.output import plural, status_word
from runner.settings import Settings
from runner.termtext import LINES, for_stream

_MARK = {Status.OK: "ok", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIP: "skip"}


def exit_code(checks: list[Check]) -> int:
    return EXIT_DOCTOR if any(c.status == Status.FAIL for c in checks) else EXIT_OK


def print_text(checks: list[Check], out: TextIO, secrets: tuple[str, ...] = ()) -> None:
    width = min(max((len(c.name) for c in checks), default=0), 18)
    for c in checks:  # details quote the API and the pod: cleaned on a terminal (runner/termtext.py)
        mark = status_word(_MARK[c.status], out, width=4)  # coloured on a terminal
        print(f"{mark}  {for_stream(redact(f'{c.name:<{width}}  {c.detail}', secrets), out, LINES)}", file=out)
        if c.fix and c.status in (Status.WARN, Status.FAIL):
            print(for_stream(redact(f"      {'':<{width}}  fix: {c.fix}", secrets), out, LINES), file=out)
    failed = sum(c.status == Status.FAIL for c in checks)
    warned = sum(c.status == Status.WARN for c in checks)
    if failed:
        print(
            f"\n{plural(failed, 'problem')} to fix before the first run ({plural(warned, 'warning')}); "
            "nothing was started or billed.",
            file=out,
        )
    else:
        print(f"\nall checks passed ({plural(warned, 'warning')}); nothing was started or billed.", file=out)


SCHEMA_VERSION = 1  # raised when a key of --json changes meaning or goes away


def as_json(checks: list[Check], secrets: tuple[str, ...] = ()) -> str:
    body = {
        "schema_version": SCHEMA_VERSION,
        "ok": exit_code(checks) == EXIT_OK,
        "exit_code": exit_code(checks),
        "checks": [c.as_dict() for c in checks],
    }
    return redact(json.dumps(body, indent=2), secrets)


def run(args: argparse.Namespace, settings: Settings) -> int:
    ctx = Context(settings, config=getattr(args, "config", None), debug=bool(getattr(args, "debug", False)))
    checks = run_checks(ctx)
    if getattr(args, "json", False):
        print(as_json(checks, settings.secrets()))
    else:
        print_text(checks, sys.stdout, settings.secrets())
    return exit_code(checks)


__all__ = ["as_json", "exit_code", "print_text", "run"]
