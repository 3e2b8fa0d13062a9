"""Runs a sweep: each run is `runner train --pod P --run-id R --set K=V ...` in a thread of this process, on
a free pod of the stack, at most `concurrency` at once; the others wait in the queue and start as pods
free up. Every line a run prints is prefixed with its run id (PrefixedStreams). Each run follows and
recovers its own pod as `runner train` always does (per pod: one claim, one lock), so one pod's
preemption never stops another's run. The total budget: a run starts with what is left of it
(--budget-usd), and once the runs' costs reach it the running ones are stopped and the queue skipped
(runner/sweep/progress.py decides all that, for a watcher too). The driver holds the sweep's lock
(runner/sweep/lock.py) while it runs. Ctrl-C (or the terminal closing) detaches every running run as its
own `runner train` would (each leaves its pod's background watcher); with nobody driving the sweep, the
watchers start its queued runs as pods free up (runner/sweep/unattended.py), or `runner sweep --resume`
takes over."""

from __future__ import annotations

import ctypes
import io
import queue
import sys
import threading
import time
from typing import TextIO

from runner.pod.stack_outputs import StackOutputs
from runner.settings import Settings
from runner.sweep import progress
from runner.sweep import record as sweeps
from runner.sweep.plan import describe
from runner.sweep.record import RunState, SweepRecord, SweepRun
from runner.types import Say

POLL_S = 0.5
DETACH_WAIT_S = 60.0  # after Ctrl-C: how long the running runs get to detach


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
        self.training: set[str] = set()  # the runs whose `runner train` has not returned yet
        self.training_lock = threading.Lock()

    # ---- the record ------------------------------------------------------------------------------
    def save(self) -> None:
        sweeps.save(self.settings.paths, self.sweep)

    def refresh_stop(self) -> None:
        """A `runner sweep --stop` from another terminal: no queued run starts any more."""
        try:
            self.sweep.stopped = sweeps.load(self.settings.paths, self.sweep.sweep_id).stopped or self.sweep.stopped
        except Exception:  # noqa: BLE001 - our own copy stays in charge
            pass

    def settle_detached(self) -> None:
        """Runs that ran with nobody attached (before a --resume): their end, from their run records."""
        changed = progress.settle(self.settings.paths, self.sweep, skip=set(self.threads))
        if changed:
            self.save()
        for run in changed:
            self.say(f"run {run.run_id} {run.state} (exit {run.exit_code}) with nobody attached")

    # ---- the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = PrefixedStreams(out, self.local), PrefixedStreams(err, self.local)
        try:
            while self.sweep.in_state(RunState.QUEUED, RunState.RUNNING):
                self.refresh_stop()
                self.settle_detached()
                progress.enforce_budget(self.settings, self.sweep, self.say, self.cli_globals)
                if self.sweep.stopped:
                    if progress.skip_queue(self.sweep):
                        self.save()
                else:
                    for run, pod in progress.placements(self.settings, self.outputs, self.sweep):
                        self.start(run, pod)
                if not self.threads:
                    break
                self.collect(POLL_S)
        except KeyboardInterrupt:
            self.detach()
            raise
        finally:
            sys.stdout, sys.stderr = out, err
        queued = self.sweep.in_state(RunState.QUEUED)
        if queued:
            self.say(
                f"{len(queued)} queued runs wait for a pod that none of the sweep's running runs holds; "
                "the watchers start them as pods free up (`runner watch`)"
            )
        failed = [r for r in self.sweep.runs if r.state == RunState.FAILED.value]
        return next((r.exit_code or 1 for r in failed), 0)

    def start(self, run: SweepRun, pod: str | None) -> None:
        argv = progress.train_argv(self.settings.paths, self.sweep, run, pod, self.cli_globals)
        run.state, run.pod = RunState.RUNNING.value, pod
        self.save()
        self.say(f"run {run.run_id} ({describe(run.values)}) starts on pod {pod or self.outputs.pod_id}")
        thread = threading.Thread(target=self._train, args=(run.run_id, argv), daemon=True, name=run.run_id)
        self.threads[run.run_id] = thread
        with self.training_lock:
            self.training.add(run.run_id)
        thread.start()

    def _train(self, run_id: str, argv: list[str]) -> None:
        from runner import cli

        self.local.prefix = f"[{run_id}] "
        code = 1
        try:
            try:
                code = cli.main(argv)
            finally:
                with self.training_lock:
                    self.training.discard(run_id)
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

    def detach(self) -> None:
        """Ctrl-C reached this process (its main thread): each running run gets it too, as its own `runner
        train` would in a terminal, and detaches (it leaves its pod's background watcher). They stay
        running in the record; whoever looks next learns their end from their run records."""
        with self.training_lock:
            for run_id in self.training:
                ident = self.threads[run_id].ident
                if ident is not None:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt)
                    )
        deadline = time.monotonic() + DETACH_WAIT_S
        for thread in self.threads.values():
            thread.join(max(deadline - time.monotonic(), 0.0))
