"""A sweep's queue with nobody driving it: every watcher pass (the background watcher a detached run
leaves, `runner watch` as a loop, `runner watch --once` from cron) moves on each sweep of the stack that
no `runner sweep` drives:

    settle    runs that ended with nobody attached get their state from their run records
    budget    the group budget reached: its running runs stopped, its queue skipped (as the driver does)
    start     queued runs on free pods, up to the sweep's concurrency, each exactly the `runner train`
              the driver would run, plus --detach: it leaves its own pod's background watcher

All of it under the sweep's lock (runner/sweep/lock.py), taken without waiting: a driver holds it for its
whole life, so the watcher leaves a driven sweep alone; two watchers never start one queued run twice
(the run is marked running on its pod before its `runner train` starts, under the lock).
"""

from __future__ import annotations

from dataclasses import replace

from runner.errors import RunnerError
from runner.pod.stack import read_outputs_for
from runner.settings import Settings
from runner.sweep import lock as sweep_lock
from runner.sweep import progress
from runner.sweep import record as sweeps
from runner.sweep.plan import describe
from runner.sweep.record import RunState, SweepRecord
from runner.types import Say


def advance(settings: Settings, say: Say) -> list[str]:
    """Move on every sweep of the stack that nobody drives; the run ids this started."""
    stack = replace(settings, pod="", pod_slot="")  # a watcher is one pod's; a sweep is the stack's
    paths = stack.paths
    started: list[str] = []
    for sweep_id in sweeps.ids(paths):
        try:
            if not sweeps.load(paths, sweep_id).in_state(RunState.QUEUED, RunState.RUNNING):
                continue
        except RunnerError:
            continue
        with sweep_lock.holding(paths, sweep_id, "watch") as mine:
            if mine:
                started += _advance(stack, sweeps.load(paths, sweep_id), say)
    return started


def _advance(settings: Settings, sweep: SweepRecord, say: Say) -> list[str]:
    paths, cli_globals = settings.paths, progress.cli_globals(settings)
    changed = progress.settle(paths, sweep)
    if changed:
        sweeps.save(paths, sweep)
    for run in changed:
        say(f"sweep {sweep.sweep_id}: run {run.run_id} {run.state} (exit {run.exit_code})")
    progress.enforce_budget(settings, sweep, lambda m: say(f"sweep {sweep.sweep_id}: {m}"), cli_globals)
    if sweep.stopped:
        skipped = progress.skip_queue(sweep)
        if skipped:
            sweeps.save(paths, sweep)
            say(f"sweep {sweep.sweep_id} is stopped ({sweep.stopped}): {len(skipped)} queued runs skipped")
        return []
    if not sweep.in_state(RunState.QUEUED):
        return []
    started = []
    for run, pod in progress.placements(settings, read_outputs_for(settings), sweep):
        if _stopped_meanwhile(settings, sweep):
            break
        argv = [*progress.train_argv(paths, sweep, run, pod, cli_globals), "--detach"]
        run.state, run.pod = RunState.RUNNING.value, pod
        sweeps.save(paths, sweep)
        say(f"sweep {sweep.sweep_id}: starting queued run {run.run_id} ({describe(run.values)}) on pod {pod or '-'}")
        code = _train(argv)
        if code == 0:
            started.append(run.run_id)
            say(f"sweep {sweep.sweep_id}: run {run.run_id} started on pod {pod or '-'}, detached")
            continue
        run.state, run.exit_code = RunState.FAILED.value, code
        sweeps.save(paths, sweep)
        say(f"sweep {sweep.sweep_id}: run {run.run_id} did not start (exit {code}); see the lines above")
    if _stopped_meanwhile(settings, sweep):
        progress.skip_queue(sweep)
        sweeps.save(paths, sweep)
    return started


def _stopped_meanwhile(settings: Settings, sweep: SweepRecord) -> bool:
    """A `runner sweep --stop` while this watcher started a run (it does not wait for the lock): kept."""
    try:
        sweep.stopped = sweep.stopped or sweeps.load(settings.paths, sweep.sweep_id).stopped
    except RunnerError:
        pass
    return sweep.stopped is not None


def _train(argv: list[str]) -> int:
    from runner import cli

    try:
        return cli.main(argv)
    except Exception as e:  # noqa: BLE001 - one run that cannot start is that run's failure, not the watcher's
        print(f"`runner train` ended with {type(e).__name__}: {e}")
        return 1


__all__ = ["advance"]
