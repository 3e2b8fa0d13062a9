"""One run's ledger: its record on this machine (record.py) and its accounting (accounting.py), kept
together and saved after every change, so the session (session.py) only runs the attempt loop.

    ledger = RunLedger.open(settings, target, cfg, run_id, continuing=..., keep_pod=...)
    ledger.pod_ready(target)                   billing opens (from when this command asked for the pod)
    ledger.launched(launched, target, ...)     an attempt started (or was adopted), with how the pod came back
    ledger.attempt_ended(...), ledger.interrupted(...), ledger.settle_loss(...)
    ledger.finished(...)                       the end: status, exit code, the pod's stop, billing closed
    ledger.tell(Event.PREEMPTED, message=...)  an event of the run's timeline (runner/eventlog.py), with
                                               where the run stands (step, checkpoint, cost so far)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from remote.podside.contract import Event
from runner import billing
from runner.errors import DamagedStateFile, RunnerError
from runner.paths import StatePaths
from runner.pod.pod import Seen
from runner.settings import Settings
from runner.timestamps import utc_now
from runner.train import report
from runner.train import run_record as runrecord
from runner.train.accounting import Accounts
from runner.train.events import Interrupted, Launched, StopCause
from runner.train.losscurve import LossCurve
from runner.train.targets.base import Target
from runner.train.train_config import TrainConfig
from runner.types import Say, TargetKind

if TYPE_CHECKING:
    from runner.eventlog import RunnerEvents


class RunLedger:
    def __init__(self, paths: StatePaths, record: runrecord.RunRecord, *, on_pod: bool, gpu_count: int | None):
        self.paths = paths
        self.record = record
        self.accounts = Accounts(record, on_pod=on_pod, gpu_count=gpu_count)
        self.loss = LossCurve((int(p[0]), float(p[1])) for p in record.loss_points if len(p) == 2)
        self.last_checkpoint: str | None = None
        self.events: RunnerEvents | None = None  # set for runs on the stack's pod: their timeline

    @classmethod
    def open(
        cls,
        settings: Settings,
        target: Target,
        cfg: TrainConfig,
        run_id: str,
        *,
        continuing: bool,
        keep_pod: bool,
        max_recoveries: int | None = None,
        budget_usd: float | None = None,
        wait_for_capacity_s: float | None = None,
    ) -> RunLedger:
        """The run's record; reusing a run id continues its record (attempts accumulate)."""
        paths = runrecord.record_paths(settings.state_dir, settings.stack, target.kind, target.label)
        previous = runrecord.load(paths, run_id) if continuing else None
        record = previous or runrecord.RunRecord(
            run_id=run_id, stack=settings.stack, target=target.kind, target_name=target.label, config=cfg.rel_path
        )
        record.config, record.output_dir, record.workspace = cfg.rel_path, cfg.output_dir, target.workspace
        record.pod_id, record.keep_pod = target.pod_id, keep_pod
        record.pod = settings.pod or None
        record.status, record.exit_code = "launching", None
        record.max_recoveries, record.budget_usd = max_recoveries, budget_usd
        record.wait_for_capacity_s = wait_for_capacity_s
        return cls(paths, record, on_pod=target.kind == TargetKind.POD, gpu_count=target.gpu_count)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def save(self, say: Say) -> None:
        self.record.loss_points = [[step, loss] for step, loss in self.loss.thinned()]
        try:
            runrecord.save(self.paths, self.record)
        except OSError as e:
            say(f"warning: could not write the run record under {self.paths.stack_dir} ({e.strerror})")

    # -- billing ----------------------------------------------------------------------------------
    def pod_ready(self, target: Target) -> None:
        """The target is reachable: this command pays for it from target.billing_from."""
        market = target.market
        if self.accounts.on_pod and target.billing_from is not None:
            self.accounts.ledger.open(target.billing_from, target.cost_per_hr, market)
        self.accounts.ledger.reprice(target.cost_per_hr, market)

    def close_billing(self, stopped_at: float | None, target: Target) -> None:
        self.accounts.close_billing(stopped_at, close=True, cost_per_hr=target.cost_per_hr)
        if self.accounts.on_pod:
            self.ask_billing(target)

    def ask_billing(self, target: Target) -> None:
        """What RunPod billed for the run's pods since the hour it started (runner/billing.py), beside the estimate."""
        r = self.record
        since = r.attempts[0].started_at if r.attempts and r.attempts[0].started_at else r.created_at
        try:
            found = billing.ask(target.settings.client(), [a.pod_id for a in r.attempts] + [r.pod_id], since)
        except RunnerError:
            found = None
        r.billed_usd, r.billed_since = (found.usd, found.since) if found else (None, None)
        r.billed_pods = list(found.pods) if found else []

    def gpu_seen(self, seen: Seen) -> None:
        """An API read while following: the GPUs' utilization, for the summary (runner/train/gpu_use.py)."""
        self.accounts.gpu_seen(seen)

    def spent(self) -> float | None:
        return self.accounts.spent(time.time())

    def tell(self, event: Event, *, message: str | None = None, recurring: bool = False) -> None:
        """Record and send an event of this run (each once); never raises, never waits."""
        if self.events is None:
            return
        r = self.record
        attempt = r.attempts[-1].attempt if r.attempts else None
        self.events.emit(
            event,
            r.run_id,
            attempt,
            pod=r.pod_id,
            step=self.accounts.progress.max_step,
            checkpoint=self.last_checkpoint or r.last_checkpoint,
            cost_usd=self.spent(),
            message=message,
            recurring=recurring,
        )

    def checkpoint_advice(self, save_steps: object) -> str | None:
        """A better checkpoint interval for this run, when its saves and interruptions say so (Young/Daly)."""
        from runner.train import checkpoint_advice

        found = checkpoint_advice.suggest(
            save_steps, self.accounts.step_arrivals(), self.record.pod_seconds, self.record.preemptions
        )
        return found.text() if found else None

    def prices(self) -> list[report.Price]:
        """This command's pod time per market and price (more than one after a move to on-demand)."""
        return [report.Price(m, r, secs, usd) for m, r, secs, usd in self.accounts.ledger.by_price(time.time())]

    # -- attempts ---------------------------------------------------------------------------------
    def launched(
        self, launched: Launched, target: Target, *, recovered: str | None, detected_at: float | None, say: Say
    ) -> None:
        self.record.log, self.record.state_file = launched.log, launched.state_file
        self.record.status = "running"
        self.record.pod_id = target.pod_id
        a = self.record.attempt(launched.attempt)
        if a is None:
            a = runrecord.AttemptRecord(
                attempt=launched.attempt,
                log_offset=launched.log_offset,
                resume_from=launched.resume_from,
                status=launched.status,
                started_at=utc_now(),
            )
            self.record.attempts.append(a)
        if self.accounts.on_pod:
            a.pod_id, a.market, a.cost_per_hr = target.pod_id, target.market, target.cost_per_hr
        if recovered is not None:
            a.recovery = recovered
            if detected_at is not None:
                a.recovery_s = round(time.time() - detected_at, 1)
            self.record.recoveries = (self.record.recoveries or 0) + 1
        self.save(say)

    def adopt(self, run_id: str, say: Say) -> None:
        """Follow a run this command did not start: its record (if this machine has one) continues."""
        if run_id == self.record.run_id:
            return
        if not self.record.attempts:
            self.paths.run_file(self.record.run_id).unlink(missing_ok=True)
        try:
            previous = runrecord.load(self.paths, run_id)
        except DamagedStateFile as e:  # training runs already: follow it, with a record of our own
            say(f"warning: {e.message}")
            previous = None
        if previous is not None:
            previous.status = self.record.status
            self.record = self.accounts.record = previous
            for step, loss in previous.loss_points:  # its loss curve continues too
                self.loss.add(int(step), float(loss))
        self.record.run_id = run_id

    def attempt_ended(self, launched: Launched, state: str, exit_code: int | None, checkpoint: str | None) -> None:
        a = self.record.attempt(launched.attempt)
        if a is not None:
            a.ended_at, a.state, a.exit_code, a.last_checkpoint = utc_now(), state, exit_code, checkpoint
        if checkpoint:
            self.last_checkpoint = self.record.last_checkpoint = checkpoint

    def interrupted(
        self, launched: Launched | None, outcome: Interrupted, now: float, target: Target, say: Say
    ) -> None:
        """An attempt ended early (launched is None: the pod went away while it was being launched)."""
        if launched is not None:
            self.attempt_ended(launched, outcome.kind, None, outcome.checkpoint)
        attempt = self.record.attempt(launched.attempt) if launched is not None else None
        self.accounts.interrupted(
            attempt,
            outcome.kind,
            now,
            billing_stopped=outcome.kind != StopCause.KILLED,
            cost_per_hr=target.cost_per_hr,
        )
        self.save(say)

    def settle_loss(self, resume_from: str | None, detected_at: float, say: Say) -> bool:
        """The steps and time the resume from `resume_from` redoes; True when there was a loss to settle."""
        if self.accounts.pending is None:
            return False
        self.accounts.settle_loss(resume_from, detected_at)
        self.save(say)
        return True

    def finished(
        self, launched: Launched, *, state: str, code: int, checkpoint: str | None, stop, target: Target
    ) -> None:
        """The end of the run (stop: the target's StopReport)."""
        import remote.podside.contract as pc

        self.attempt_ended(launched, state, code, checkpoint)
        self.accounts.attempt_costs(self.record.attempt(launched.attempt), stop.stopped_at or time.time())
        self.record.status = state if state in pc.TERMINAL_STATES else "unknown"
        self.record.exit_code = code
        self.record.pod_stop = stop.text if self.accounts.on_pod else None
        self.close_billing(stop.stopped_at, target)


__all__ = ["RunLedger"]
