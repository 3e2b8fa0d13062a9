"""`runner watch` (runner/commands/watch.py): one pass, a loop, or stopping the background watcher."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from runner.errors import RunnerError
from runner.settings import Settings
from runner.watcher import background
from runner.watcher.one_pass import Outcome, watch_pass


def _say(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} [watch] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings.require_api_key()
    if args.stop:
        pid = background.stop(settings.paths)
        print(f"stopped the watcher of stack {settings.stack} (pid {pid})" if pid else "no watcher runs for this stack")
        return 0
    confirm = args.confirm if args.confirm is not None else settings.watch_confirm_s
    poll = args.poll if args.poll is not None else settings.watch_poll_s
    if args.once:
        result = watch_pass(settings, _say, span_s=confirm)
        _say(f"{result.outcome.value}" + (f" (run {result.run_id})" if result.run_id else ""))
        _sweeps(settings)
        return 0
    with background.holding(settings.paths) as mine:
        if not mine:
            _say(f"another watcher runs for stack {settings.stack} (pid {background.running_pid(settings.paths)})")
            return 0
        return _loop(settings, poll, confirm, ends_when_idle=args.background)


def _loop(settings: Settings, poll_s: float, confirm_s: float, *, ends_when_idle: bool) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _say(f"watching stack {settings.stack} every {poll_s:g}s")
    last: Outcome | None = None
    while not stop.is_set():
        try:
            result = watch_pass(settings, _say, span_s=confirm_s)
        except RunnerError as e:
            _say(f"this pass failed ({e.message}); trying again in {poll_s:g}s")
        else:
            if result.outcome != last:
                _say(result.outcome.value + (f" (run {result.run_id})" if result.run_id else ""))
                last = result.outcome
            if _sweeps(settings):
                last = None  # this pod may have a run again: say what the next pass sees
                continue
            if result.outcome == Outcome.NOTHING and ends_when_idle:
                _say("no unfinished run left; the watcher ends")
                return 0
        if ends_when_idle and not background.still_guarded(settings.paths):
            _say("this machine's records of the stack are gone (its watcher lock with them); the watcher ends")
            return 0
        stop.wait(poll_s)
    _say("stopped")
    return 0


def _sweeps(settings: Settings) -> list[str]:
    """The queued runs of sweeps nobody drives, started on free pods (runner/sweep/unattended.py)."""
    from runner.sweep.unattended import advance

    try:
        return advance(settings, _say)
    except RunnerError as e:
        _say(f"could not move the stack's sweeps on ({e.message}); trying again next pass")
        return []


__all__ = ["run"]
