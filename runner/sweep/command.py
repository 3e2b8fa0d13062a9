"""`runner sweep`: start a sweep and follow it, or show, stop or resume one (runner/sweep/__init__.py)."""

from __future__ import annotations

import argparse
import signal

from runner import timeouts
from runner.errors import UsageError
from runner.output import say
from runner.pod.stack import read_outputs_for
from runner.settings import Settings
from runner.sweep import lock as sweep_lock
from runner.sweep import progress
from runner.sweep import record as sweeps
from runner.sweep.driver import Driver
from runner.sweep.plan import axis, combinations, default_id, describe, run_id
from runner.sweep.record import SweepRecord, SweepRun
from runner.sweep.report import as_json, table

cli_globals = progress.cli_globals


def _hang_up(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the terminal closed: detach as on Ctrl-C


def run(args: argparse.Namespace, settings: Settings) -> int:
    paths = settings.paths
    if args.status or args.stop:
        sweep = sweeps.load(paths, args.sweep)
        with sweep_lock.holding(paths, sweep.sweep_id, "status") as nobody_drives:
            if progress.settle(paths, sweep) and nobody_drives:  # a driver keeps its own record
                sweeps.save(paths, sweep)
        if args.stop:
            sweep.stopped = sweep.stopped or "stopped with `runner sweep --stop`"
            progress.skip_queue(sweep)
            sweeps.save(paths, sweep)
            progress.stop_runs(settings, sweep, cli_globals(settings))
        print(as_json(settings, sweep) if args.json else table(settings, sweep))
        return 0
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.resume:
        sweep = sweeps.load(paths, args.sweep)
        if sweep.stopped:
            raise UsageError(f"sweep {sweep.sweep_id} was stopped ({sweep.stopped}); start a new one")
    else:
        if not args.config or not args.set:
            raise UsageError("a new sweep needs --config and at least one --set KEY=V1,V2")
        from runner.train.train_config import load_train_config

        cfg = load_train_config(args.config, settings.project_root)
        combos = combinations([axis(text) for text in args.set])
        sweep_id = args.sweep or default_id(cfg.name)
        sweep = SweepRecord(
            sweep_id=sweep_id,
            config=cfg.rel_path,
            concurrency=args.concurrency,
            runs=[SweepRun(run_id(sweep_id, i), values) for i, values in enumerate(combos)],
            budget_usd=args.budget_usd,
            max_recoveries=args.max_recoveries,
        )
    with sweep_lock.holding(paths, sweep.sweep_id, "sweep") as mine:
        if mine:
            return _drive(args, settings, sweep)
    holder = sweep_lock.holder(paths, sweep.sweep_id)
    if holder is not None and holder.command == "sweep":
        raise UsageError(
            f"sweep {sweep.sweep_id} is driven by {holder.describe()}",
            hint="Follow it with `runner sweep --status`; stop it with `runner sweep --stop`.",
        )
    say(f"a watcher is starting a queued run of sweep {sweep.sweep_id}; taking over once it has")
    with sweep_lock.holding(paths, sweep.sweep_id, "sweep", wait_s=timeouts.current().launch_s) as mine:
        if not mine:
            raise UsageError(f"sweep {sweep.sweep_id} stayed locked by {sweep_lock.holder(paths, sweep.sweep_id)}")
        return _drive(args, settings, sweeps.load(paths, sweep.sweep_id) if args.resume else sweep)


def _drive(args: argparse.Namespace, settings: Settings, sweep: SweepRecord) -> int:
    """Under the sweep's lock: save a new sweep, then drive it until its runs are done or Ctrl-C."""
    if not args.resume:
        sweeps.save(settings.paths, sweep)
        say(f"sweep {sweep.sweep_id}: {len(sweep.runs)} runs of {sweep.config}, at most {sweep.concurrency} at once")
        for r in sweep.runs:
            say(f"  {r.run_id}: {describe(r.values)}")
    try:
        signal.signal(signal.SIGHUP, _hang_up)
    except ValueError:
        pass  # not the main thread (in-process tests)
    outputs = read_outputs_for(settings)
    try:
        code = Driver(settings, outputs, sweep, say, cli_globals(settings)).run()
    except KeyboardInterrupt:
        say(
            f"detached: the running runs go on and their pods stop themselves; with nobody driving the sweep, "
            f"the watchers start its queued runs as pods free up, or `runner sweep --resume --sweep {sweep.sweep_id}`"
        )
        return 130
    print(table(settings, sweep))
    return code
