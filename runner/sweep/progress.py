"""How a sweep moves on, whoever moves it: the driver (runner/sweep/driver.py) or a watcher with nobody
attached (runner/sweep/unattended.py). One owner for each decision:

    settle(paths, sweep)              a run that ended with nobody attached: its state from its run record
    spent(paths, sweep)               what the sweep's runs cost so far
    enforce_budget(...)               the group budget reached: stop the running runs, skip the queue
    skip_queue(sweep)                 a stopped sweep: its queued runs never start
    placements(settings, outputs, sweep)   which queued runs start now, on which pod
    train_argv(...)                   the `runner train` that runs one of them
"""

from __future__ import annotations

from runner.paths import StatePaths
from runner.pod.choice import UNFINISHED, availability
from runner.pod.stack_outputs import StackOutputs
from runner.settings import Settings
from runner.sweep.record import RunState, SweepRecord, SweepRun
from runner.train import run_record
from runner.types import Say

# A run record's status once its run has ended -> the run's state in the sweep. "stopped" (a watcher saw
# the pod stop, not preempted, and could not read the run's result) and "unknown" are ENDED until a
# later look (`runner status`, a watcher with S3 keys) learns more.
_FINAL = {
    "succeeded": RunState.SUCCEEDED,
    "failed": RunState.FAILED,
    "stalled": RunState.FAILED,
    "preempted": RunState.FAILED,  # recoveries used up
    "interrupted": RunState.FAILED,  # abandoned during a recovery
    "stopped": RunState.ENDED,
    "unknown": RunState.ENDED,
}


def settle(paths: StatePaths, sweep: SweepRecord, *, skip: set[str] | frozenset[str] = frozenset()) -> list[SweepRun]:
    """Running (or ended, result unknown) runs whose run record says they ended: their state and exit code
    from it. skip: the runs a driver follows itself (it knows their end first). The runs that changed."""
    changed = []
    for run in sweep.in_state(RunState.RUNNING, RunState.ENDED):
        record = run_record.load(paths, run.run_id) if run.run_id not in skip else None
        if record is None or record.status in UNFINISHED:
            continue
        state = _FINAL.get(record.status, RunState.FAILED)
        code = record.exit_code if record.exit_code is not None else (0 if state == RunState.SUCCEEDED else None)
        if (run.state, run.exit_code) != (state.value, code):
            run.state, run.exit_code = state.value, code
            changed.append(run)
    return changed


def spent(paths: StatePaths, sweep: SweepRecord) -> float:
    total = 0.0
    for run in sweep.runs:
        record = run_record.load(paths, run.run_id) if run.state != RunState.QUEUED.value else None
        total += (record.estimated_cost_usd or 0.0) if record is not None else 0.0
    return total


def enforce_budget(settings: Settings, sweep: SweepRecord, say: Say, cli_globals: list[str]) -> bool:
    """Once the runs' costs reach the sweep's budget: the sweep is stopped (saved), its running runs are
    stopped. True when it did that now."""
    from runner.sweep import record as sweeps

    if sweep.budget_usd is None or sweep.stopped:
        return False
    cost = spent(settings.paths, sweep)
    if cost < sweep.budget_usd:
        return False
    sweep.stopped = f"the sweep's budget ${sweep.budget_usd:.2f} is reached (${cost:.2f})"
    say(f"{sweep.stopped}: stopping its running runs, skipping the queue")
    sweeps.save(settings.paths, sweep)
    stop_runs(settings, sweep, cli_globals)
    return True


def skip_queue(sweep: SweepRecord) -> list[SweepRun]:
    queued = sweep.in_state(RunState.QUEUED)
    for run in queued:
        run.state = RunState.SKIPPED.value
    return queued


def placements(settings: Settings, outputs: StackOutputs, sweep: SweepRecord) -> list[tuple[SweepRun, str | None]]:
    """The queued runs that start now and their pods: free pods no run of the sweep holds, at most
    `concurrency` runs running at once. A one-pod stack: one run at a time."""
    running = sweep.in_state(RunState.RUNNING)
    taken = {r.pod for r in running}
    if outputs.pods:
        free, _ = availability(settings, outputs)
        pods: list[str | None] = [p.name for p in free if p.name not in taken]
    else:
        pods = [] if running or not _only_pod_free(settings) else [None]
    room = max(sweep.concurrency - len(running), 0)
    return list(zip(sweep.in_state(RunState.QUEUED), pods[:room]))


def _only_pod_free(settings: Settings) -> bool:
    """A one-pod stack's pod: no runner or watcher here leads it, no run of this machine's is unfinished."""
    from runner.stacklock import StackLock

    if StackLock.of(settings.paths).holder() is not None:
        return False
    return not any(r.status in UNFINISHED for r in run_record.all_records(settings.paths))


def train_argv(
    paths: StatePaths, sweep: SweepRecord, run: SweepRun, pod: str | None, cli_globals: list[str]
) -> list[str]:
    """`runner train` for one run of the sweep (the driver's and a watcher's), with what is left of the budget."""
    argv = [*cli_globals, "train", "--config", sweep.config, "--run-id", run.run_id]
    argv += ["--pod", pod] if pod else []
    for key, value in run.values.items():
        argv += ["--set", f"{key}={value}"]
    argv += ["--max-recoveries", str(sweep.max_recoveries)]
    if sweep.budget_usd is not None:
        argv += ["--budget-usd", f"{max(sweep.budget_usd - spent(paths, sweep), 0.01):.2f}"]
    return argv


def stop_runs(settings: Settings, sweep: SweepRecord, cli_globals: list[str]) -> None:
    """`runner stop` on every pod that runs one of the sweep's runs (it holds the run first)."""
    from runner import cli

    for run in sweep.in_state(RunState.RUNNING):
        cli.main([*cli_globals, "stop", *(["--pod", run.pod] if run.pod else [])])


def cli_globals(settings: Settings) -> list[str]:
    """--stack and --env-file as this command was given them: the runs' commands get the same."""
    return ["--stack", settings.stack, *(["--env-file", str(settings.env_file)] if settings.env_file else [])]


__all__ = [
    "cli_globals",
    "enforce_budget",
    "placements",
    "settle",
    "skip_queue",
    "spent",
    "stop_runs",
    "train_argv",
]
