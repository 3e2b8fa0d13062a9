"""What the user asked `runner train` for, typed: built once from the flags by the command layer
(runner/train/command.py), read by everything below it instead of the argparse Namespace."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from runner.commands.argtypes import HostSpec


@dataclass(frozen=True)
class TrainOptions:
    config: str
    run_id: str | None = None  # None: a new run, named after the config and the time
    detach: bool = False
    keep_pod: bool = False
    budget_usd: float | None = None
    max_recoveries: int = 3
    allow_unpushed: bool = False
    workspace: str | None = None
    local: bool = False
    host: HostSpec | None = None
    # Detached from the stack's pod (--detach, Ctrl-C): leave a background watcher on this machine
    # (runner/watcher/background.py); off with --no-watch or RUNNER_WATCH=0, and inside a watcher itself.
    spawn_watcher: bool = True
    # No GPU for the pod (spot or on-demand): keep trying this long, with backoff (0: fail at once).
    wait_for_capacity_s: float = 0.0
    stall_minutes: int | None = None  # --stall-minutes (None: the stack's stallMinutes)
    event_source: str = "runner"  # who sends the run's events (EventSource: runner | watcher)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainOptions:
        return cls(
            config=args.config,
            run_id=args.run_id,
            detach=bool(args.detach),
            keep_pod=bool(args.keep_pod),
            budget_usd=args.budget_usd,
            max_recoveries=args.max_recoveries,
            allow_unpushed=bool(args.allow_unpushed),
            workspace=args.workspace,
            local=bool(args.local),
            host=args.host,
            spawn_watcher=not args.no_watch,
            wait_for_capacity_s=args.wait_for_capacity or 0.0,
            stall_minutes=args.stall_minutes,
        )

    @property
    def on_stack_pod(self) -> bool:
        return not self.local and self.host is None


__all__ = ["TrainOptions"]
