"""`runner sweep`: its flags and help. The work is in runner.sweep.command, imported only when it runs."""

from __future__ import annotations

import argparse

from runner.commands.argtypes import budget, non_negative_int, run_id

NAME = "sweep"
IMPLEMENTATION = "runner.sweep.command"
SUMMARY = "run one config with values varied, as one group: queued on free pods, one status, one stop"
DESCRIPTION = """\
Expand --set KEY=V1,V2 (repeatable) into every combination, one run each (run ids <sweep>-1,
<sweep>-2...), and train them on the stack's free pods, at most --concurrency at once; the rest wait
and start as pods free up. Each run trains a derived config written in its own checkout on the pod
(your file is never edited), recovers its own pod's preemptions as `runner train` does, and prints
its lines prefixed with its run id. The group has one budget (--budget-usd, all runs together), one
status (--status), one stop (--stop) and one summary table (final loss, checkpoint, cost per run).
Ctrl-C detaches: running runs finish on their pods (each leaves its pod's background watcher), and
with nobody driving the sweep the watchers (`runner watch`, in every form) start its queued runs as
pods free up; --resume drives it again from this terminal."""
EXAMPLES = (
    "python -m runner sweep --config configs/baseline_whisper_small.yaml --set lr=1e-4,3e-4 --set batch=8,16",
    "python -m runner sweep --config configs/x.yaml --set lr=1e-4,3e-4 --concurrency 2 --budget-usd 20",
    "python -m runner sweep --status",
    "python -m runner sweep --stop --sweep x-sweep-20250101-120000",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="PATH", help="the training config every run starts from")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a top-level config key and its values (repeatable: every combination runs)",
    )
    p.add_argument(
        "--concurrency",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="at most N runs at once (default: 2; the stack's pods limit it too)",
    )
    p.add_argument("--budget-usd", type=budget, metavar="USD", help="one budget for all the runs together")
    p.add_argument(
        "--max-recoveries", type=non_negative_int, default=3, metavar="N", help="per run, as `runner train`'s"
    )
    p.add_argument(
        "--sweep",
        type=run_id,
        metavar="ID",
        help="the sweep's id (default: <config>-sweep-<time>; with --status/--stop/--resume: the newest one)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--status", action="store_true", help="show the sweep's runs and totals")
    what.add_argument("--stop", action="store_true", help="stop its running runs and skip its queue")
    what.add_argument(
        "--resume", action="store_true", help="drive a detached sweep again: its queued runs start from here"
    )
    p.add_argument("--json", action="store_true", help="with --status: one JSON object")
