"""Runs a sweep: each run is `runner train --pod P --run-id R --set K=V ...` in a thread of this process, on
a free pod of the stack, at most `concurrency` at once; the others wait in the queue and start as pods
free up. Every line a run prints is prefixed with its run id (PrefixedStreams). Each run follows and
recovers its own pod as `runner train` always does (per pod: one claim, one lock), so one pod's
preemption never stops another's run. The total budget: a run starts with what is left of it
(--budget-usd), and once the runs' costs reach it the running ones are stopped and the queue skipped.
Ctrl-C leaves the running runs to their pods (they finish and stop themselves) and the queue waiting for
`runner sweep --resume`."""

from __future__ import annotations

import io
import queue
import sys
import threading
from typing import TextIO

from runner.pod.choice import availability
from runner.pod.stack import StackOutputs
from runner.settings import Settings
from runner.sweep import record as sweeps
from runner.sweep.plan import describe
from runner.sweep.record import RunState, SweepRecord, SweepRun
from runner.train import run_record
from runner.types import Say

POLL_S = 0.5


class PrefixedStreams(io.TextIOBase):
    """sys.stdout / sys.stderr for the sweep's threads: a thread with a prefix gets its lines prefixed,
    whole lines at a time (two runs' lines never mix within a line); other threads write as they were."""

    def __init__(self, underlying: TextIO, local: threading.local):
        self.underlying, self.local = underlying, local
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        prefix = getattr(self.local, "prefix", None)
        if prefix is None:
            return self.underlying.write(text)
        pending = getattr(self.local, "pending", {}).get(id(self), "") + text
        *lines, rest = pending.split("\n")
        self.local.__dict__.setdefault("pending", {})[id(self)] = rest
        if lines:
            with self.lock:
                self.underlying.write("".join(f"{prefix}{line}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        self.underlying.flush()

    def isatty(self) -> bool:
        return False  # no colours or redrawn lines in a shared view


class Driver:
    def __init__(self, settings: Settings, outputs: StackOutputs, sweep: SweepRecord, say: Say, cli_globals: list[str]):
        self.settings, self.outputs, self.sweep, self.say = settings, outputs, sweep, say
        self.cli_globals = cli_globals  # --stack, --env-file: what this command was given
        self.local = threading.local()
        self.finished: queue.Queue[tuple[str, int]] = queue.Queue()
        self.threads: dict[str, threading.Thread] = {}

    # ---- the record ------------------------------------------------------------------------------
    def save(self) -> None:
        sweeps.save(self.settings.paths, self.sweep)

    def refresh_stop(self) -> None:
        """A `runner sweep --stop` from another terminal: no queued run starts any more."""
        try:
            self.sweep.stopped = sweeps.load(self.settings.paths, self.sweep.sweep_id).stopped or self.sweep.stopped
        except Exception:  # noqa: BLE001 - our own copy stays in charge
            pass

    def spent(self) -> float:
        total = 0.0
        for run in self.sweep.runs:
            rec = run_record.load(self.settings.paths, run.run_id) if run.state != RunState.QUEUED.value else None
            total += (rec.estimated_cost_usd or 0.0) if rec is not None else 0.0
        return total

    # ---- the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = PrefixedStreams(out, self.local), PrefixedStreams(err, self.local)
        try:
            while self.sweep.in_state(RunState.QUEUED, RunState.RUNNING):
                self.refresh_stop()
                self.enforce_budget()
                if self.sweep.stopped:
                    for run in self.sweep.in_state(RunState.QUEUED):
                        run.state = RunState.SKIPPED.value
                    self.save()
                else:
                    self.start_what_fits()
                if not self.threads:
                    break
                self.collect(POLL_S)
        finally:
            sys.stdout, sys.stderr = out, err
        failed = [r for r in self.sweep.runs if r.state == RunState.FAILED.value]
        return next((r.exit_code or 1 for r in failed), 0)

    def start_what_fits(self) -> None:
        taken = {r.pod for r in self.sweep.in_state(RunState.RUNNING)}
        if self.outputs.pods:
            free, _ = availability(self.settings, self.outputs)
            pods: list[str | None] = [p.name for p in free if p.name not in taken]
        else:
            pods = [] if taken else [None]  # a one-pod stack: one run at a time
        for run in self.sweep.in_state(RunState.QUEUED):
            if not pods or len(self.threads) >= self.sweep.concurrency:
                break
            self.start(run, pods.pop(0))

    def start(self, run: SweepRun, pod: str | None) -> None:
        argv = [*self.cli_globals, "train", "--config", self.sweep.config, "--run-id", run.run_id]
        argv += ["--pod", pod] if pod else []
        for key, value in run.values.items():
            argv += ["--set", f"{key}={value}"]
        argv += ["--max-recoveries", str(self.sweep.max_recoveries)]
        if self.sweep.budget_usd is not None:
            argv += ["--budget-usd", f"{max(self.sweep.budget_usd - self.spent(), 0.01):.2f}"]
        run.state, run.pod = RunState.RUNNING.value, pod
        self.save()
        self.say(f"run {run.run_id} ({describe(run.values)}) starts on pod {pod or self.outputs.pod_id}")
        thread = threading.Thread(target=self._train, args=(run.run_id, argv), daemon=True, name=run.run_id)
        self.threads[run.run_id] = thread
        thread.start()

    def _train(self, run_id: str, argv: list[str]) -> None:
        from runner import cli

        self.local.prefix = f"[{run_id}] "
        code = 1
        try:
            code = cli.main(argv)
        except BaseException as e:  # noqa: BLE001 - reported, counted as a failure
            print(f"the run ended with {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.write("\n") if getattr(self.local, "pending", {}).get(id(stream)) else None
            self.finished.put((run_id, code))

    def collect(self, wait_s: float) -> None:
        try:
            run_id, code = self.finished.get(timeout=wait_s)
        except queue.Empty:
            return
        self.threads.pop(run_id).join()
        run = next(r for r in self.sweep.runs if r.run_id == run_id)
        run.state = RunState.SUCCEEDED.value if code == 0 else RunState.FAILED.value
        run.exit_code = code
        self.save()
        self.say(f"run {run_id} {run.state} (exit {code}); {len(self.sweep.in_state(RunState.QUEUED))} queued")

    def enforce_budget(self) -> None:
        if self.sweep.budget_usd is None or self.sweep.stopped:
            return
        spent = self.spent()
        if spent < self.sweep.budget_usd:
            return
        self.sweep.stopped = f"the sweep's budget ${self.sweep.budget_usd:.2f} is reached (${spent:.2f})"
        self.say(f"{self.sweep.stopped}: stopping its running runs, skipping the queue")
        self.save()
        stop_runs(self.settings, self.sweep, self.cli_globals)


def stop_runs(settings: Settings, sweep: SweepRecord, cli_globals: list[str]) -> None:
    """`runner stop` on every pod that runs one of the sweep's runs (it holds the run first)."""
    from runner import cli

    for run in sweep.in_state(RunState.RUNNING):
        cli.main([*cli_globals, "stop", *(["--pod", run.pod] if run.pod else [])])
