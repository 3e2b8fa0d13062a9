"""`runner sweep`: start a sweep and follow it, or show, stop or resume one (runner/sweep/__init__.py)."""

from __future__ import annotations

import argparse

from runner.errors import UsageError
from runner.output import say
from runner.pod.stack import read_outputs_for
from runner.settings import Settings
from runner.sweep import record as sweeps
from runner.sweep.driver import Driver, stop_runs
from runner.sweep.plan import axis, combinations, default_id, describe, run_id
from runner.sweep.record import RunState, SweepRecord, SweepRun
from runner.sweep.report import as_json, table


def cli_globals(settings: Settings) -> list[str]:
    return ["--stack", settings.stack, *(["--env-file", str(settings.env_file)] if settings.env_file else [])]


def run(args: argparse.Namespace, settings: Settings) -> int:
    paths = settings.paths
    if args.status or args.stop:
        sweep = sweeps.load(paths, args.sweep)
        if args.stop:
            sweep.stopped = sweep.stopped or "stopped with `runner sweep --stop`"
            for queued in sweep.in_state(RunState.QUEUED):
                queued.state = RunState.SKIPPED.value
            sweeps.save(paths, sweep)
            stop_runs(settings, sweep, cli_globals(settings))
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
        sweeps.save(paths, sweep)
        say(f"sweep {sweep_id}: {len(combos)} runs of {cfg.rel_path}, at most {args.concurrency} at once")
        for r in sweep.runs:
            say(f"  {r.run_id}: {describe(r.values)}")
    outputs = read_outputs_for(settings)
    try:
        code = Driver(settings, outputs, sweep, say, cli_globals(settings)).run()
    except KeyboardInterrupt:
        say(
            f"detached: the running runs go on and their pods stop themselves; the queue waits: "
            f"`runner sweep --resume --sweep {sweep.sweep_id}`"
        )
        return 130
    print(table(settings, sweep))
    return code
