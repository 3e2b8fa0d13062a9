"""`runner train`: one run from stack outputs to training's exit code, as a loop of attempts.

    checks (no money)  settings, the config (exists, YAML, output_dir), stack outputs, repo URL   command.py
    prepare            the target is reachable (pod: resumed/started, SSH banner)                targets/
    launch             the pod-side launcher over bash on stdin -> RT_RESULT                      launch.py
    follow             the log from that offset across SSH drops, until the attempt's end         attempt.py
    finish             ack the end, summary, make sure the pod stopped, record                    report.py
A launch is Launched or Interrupted, an attempt ends Ended, Interrupted, Detached or Lost (events.py). An
interruption (the pod preempted/stopped/gone, the budget reached) goes to a Recovery (recovery.py): the next
attempt, or give up. Record and accounting: the RunLedger (ledger.py). Ctrl-C while following detaches (training
goes on, the pod stops itself); during a recovery, before the relaunch, it stops the pod brought up, exit 130.
"""

from __future__ import annotations

import shlex
import time

from remote.podside import contract as pc
from remote.podside.contract import Event, HoldReason
from runner import timeouts
from runner.errors import EXIT_INTERRUPTED, RunnerError
from runner.settings import Settings
from runner.train import report
from runner.train.attempt import follow_attempt
from runner.train.console import Console, LogView
from runner.train.endwatch import acknowledge
from runner.train.events import (
    RECOVERABLE,
    RECOVERED_ELSEWHERE,
    Detached,
    Ended,
    Interrupted,
    Launched,
    Lost,
    StopCause,
)
from runner.train.ledger import RunLedger
from runner.train.options import TrainOptions
from runner.train.recovery import Recovery, ReportAndExit, RunContext
from runner.train.remote_launch import LaunchError, launch_surviving_drops, launcher_env, mask_url
from runner.train.targets import Target
from runner.train.train_config import TrainConfig, uncommitted_warning
from runner.types import TargetKind


class TrainSession:
    def __init__(
        self,
        options: TrainOptions,
        settings: Settings,
        target: Target,
        cfg: TrainConfig,
        *,
        recovery: Recovery | None = None,
        console: Console | None = None,
        remote_commit: str | None = None,
        recovered: str | None = None,
    ):
        """recovered: a watcher brought the pod back for this run (how): the first launch is that recovery."""
        self.options = options
        # The branch's commit `git ls-remote` saw seconds ago: the first launch's pod skips its `git fetch`
        # when it already has it (RT_REPO_COMMIT). Not for relaunches after a recovery: they fetch as ever.
        self.remote_commit = remote_commit
        self.settings = settings
        self.target = target
        self.cfg = cfg
        self.recovery = recovery or ReportAndExit()
        self.console = console or Console(settings.secrets())
        self.on_pod = target.kind == TargetKind.POD
        self.keep_pod = options.keep_pod and self.on_pod
        run_id = options.run_id or cfg.default_run_id()
        self.ledger = RunLedger.open(
            settings,
            target,
            cfg,
            run_id,
            continuing=options.run_id is not None,
            keep_pod=self.keep_pod,
            max_recoveries=options.max_recoveries,
            budget_usd=options.budget_usd,
            wait_for_capacity_s=options.wait_for_capacity_s or None,
        )
        if self.on_pod:  # its timeline (runner/eventlog.py): the ledger tells, the first round of a wait too
            from runner.eventlog import RunnerEvents

            self.ledger.events = RunnerEvents.of(settings, options.event_source, warn=self.say)
            target.on_capacity_wait(
                lambda e, n: (
                    self.ledger.tell(Event.WAITING_FOR_CAPACITY, message=e.headline, recurring=True) if n == 1 else None
                )
            )
        self.view = LogView(self.console, self.ledger.accounts.progress, self.ledger.loss)
        self.launch_time: float | None = None
        self.recoveries = 0  # automatic recoveries by this command
        self.detected_at: float | None = None  # when the current interruption was noticed
        self._recovered: str | None = recovered  # how the pod came back: resumed | running | recreated
        self._announced: set[tuple[str, int]] = set()
        self._relaunched: Launched | None = None  # set as soon as a launch succeeded

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.ledger.run_id

    @property
    def record(self):
        return self.ledger.record

    def say(self, message: str) -> None:
        self.console.say(message)

    def save_record(self) -> None:
        self.ledger.save(self.say)

    def stack_flag(self) -> str:
        return report.stack_flag(self.settings)

    def resume_command(self) -> str:
        """The command that resumes this run, quoted for a shell (the run id may come from the pod)."""
        where = {TargetKind.LOCAL: ["--local"], TargetKind.HOST: ["--host", self.target.label]}.get(
            self.target.kind, []
        )
        words = ["python", "-m", "runner", "train", "--config", self.cfg.rel_path, "--run-id", self.run_id, *where]
        return shlex.join(words) + self.stack_flag()

    def _context(self) -> RunContext:
        return RunContext(
            self.run_id,
            self.resume_command(),
            self.ledger.last_checkpoint,
            self.recoveries,
            self.ledger.spent(),
            self.say,
            lambda event, message: self.ledger.tell(event, message=message),
        )

    def _settle_loss(self, resume_from: str | None) -> None:
        if self.ledger.settle_loss(resume_from, self.detected_at or time.time(), self.say):
            self.view.progress = self.ledger.accounts.progress

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> int:
        t = self.target
        repo_url, branch = t.repo()
        warning = uncommitted_warning(self.cfg, self.settings.project_root)
        if warning:
            self.say(f"warning: {warning}")
        self.save_record()
        t.prepare(self.say)
        self.ledger.pod_ready(t)
        env = launcher_env(
            workspace=t.workspace,
            repo_url=repo_url,
            branch=branch,
            config=self.cfg.rel_path,
            train_script=self.settings.train_script,
            run_id=self.run_id,
            stop_pod=t.stops_pod and not self.keep_pod,
            detach=self.options.detach,
            session=t.session,
            idle_stop_minutes=t.idle_stop_minutes,
            commit=self.remote_commit,
            pod_slot=t.pod_slot,
            shared_volume=t.shared_volume,
            config_set=dict(self.options.config_set),
            run_policy=t.run_policy(self.options, self.settings),
        )
        started = self._launch(env)
        env.pop(pc.Inputs.REPO_COMMIT, None)  # a relaunch, minutes or hours later, fetches the branch
        while True:
            launched = started if isinstance(started, Launched) else None
            outcome: Ended | Interrupted | Detached | Lost = started if isinstance(started, Interrupted) else Detached()
            if launched is not None:
                if self.options.detach:
                    return self.detached(launched, by_request=True)
                outcome = self.follow(launched)
                if isinstance(outcome, Detached):
                    return self.detached(launched, by_request=False)
                if isinstance(outcome, Lost):
                    self.save_record()
                    raise outcome.error
                if isinstance(outcome, Ended):
                    return self.finish(launched, outcome)
            assert isinstance(outcome, Interrupted)
            self.ledger.interrupted(launched, outcome, self.detected_at or time.time(), t, self.say)
            if outcome.kind in RECOVERABLE:
                self.ledger.tell(Event.PREEMPTED, message=outcome.message)
            self._relaunched = None
            try:
                decision = self.recovery.decide(outcome, t, self._context())
                if decision.retry:
                    elsewhere = decision.recovered == RECOVERED_ELSEWHERE
                    self.recoveries += 0 if elsewhere else 1
                    self._recovered = None if elsewhere else decision.recovered
                    if decision.message:
                        self.say(decision.message)
                    if not decision.prepared:
                        t.prepare(self.say)
                    self.ledger.pod_ready(t)
                    started = self._launch(env, recovering=True)
                    continue
            except KeyboardInterrupt:
                if self._relaunched is not None:  # training runs again: detach as usual
                    return self.detached(self._relaunched, by_request=False)
                return self._abandon_recovery(outcome)
            return self._gave_up(outcome, decision.exit_code, decision.message)

    def follow(self, launched: Launched) -> Ended | Interrupted | Detached | Lost:
        try:
            start = self.view.follow_start(launched, self.target.borrowed)
            self._settle_loss(launched.resume_from)
            self._announce(launched)
            self.detected_at = None
            outcome = follow_attempt(
                self.target, launched, start, self.view, say=self.say, budget=self._budget, on_seen=self.ledger.gpu_seen
            )
        except KeyboardInterrupt:  # also before the first line: detach all the same
            return Detached()
        self.detected_at = outcome.detected_at
        return outcome.result

    def _announce(self, launched: Launched) -> None:
        key = (launched.run_id, launched.attempt)
        if key not in self._announced:
            self._announced.add(key)
            self.console.started = True  # -q shows the run from here on
            self.say(report.announce_line(self.target, launched, self.target.market))

    def _budget(self) -> Interrupted | None:
        """--budget-usd: once this command's pod time has cost that much, stop the pod (the interruption)."""
        budget = self.options.budget_usd
        if not budget or not self.on_pod:
            return None
        spent = self.ledger.spent()
        if spent is None or spent < budget:
            return None
        self.say(f"budget reached: about ${spent:.2f} of ${budget:.2f}; stopping pod {self.target.pod_id}")
        self.ledger.tell(Event.BUDGET_REACHED, message=f"about ${spent:.2f} of ${budget:.2f}; stopping the pod")
        self.target.hold(self.run_id, None, HoldReason.BUDGET, self.say)
        stop = self.target.stop_now(self.say)
        self.record.pod_stop = f"{stop.text} (budget)"
        return Interrupted(
            StopCause.BUDGET,
            f"the run reached its budget of ${budget:.2f} (--budget-usd) and pod {self.target.pod_id} {stop.text}",
        )

    def _launch(self, env: dict[str, str], *, recovering: bool = False) -> Launched | Interrupted:
        """launch(); on failure undo what prepare() started (a Ctrl-C while recovering is left to run()'s
        _abandon_recovery, which also stops a pod the recovery only resumed). The pod may go away under the
        launch (preempted or stopped under a dropped launch: the SSH drop's API check says so): that
        interruption is returned, and recovery decides as for a running attempt."""
        t = self.target
        if not recovering:  # a relaunch's line is its attempt boundary
            self.say(
                f"launching run {self.run_id}: config {self.cfg.rel_path}, repo {mask_url(env[pc.Inputs.REPO_URL])} "
                f"({env[pc.Inputs.REPO_BRANCH]}), workspace {t.workspace}"
            )
        try:
            known = max((a.attempt for a in self.record.attempts), default=0)
            started = launch_surviving_drops(
                t.borrowed,  # the launch's link is kept for the follow (one SSH handshake, not three)
                env,
                label=t.label,
                say=self.say,
                known_attempt=known,
                on_drop=lambda error, n: t.after_disconnect(error, n, self.say),
                known_programs=self.ledger.paths.stack_dir / "podside",
            )
        except (RunnerError, KeyboardInterrupt) as e:
            self.record.status = "failed"
            self.save_record()
            if not (recovering and isinstance(e, KeyboardInterrupt)):
                t.release_unused(self.say)
            raise
        if isinstance(started, Interrupted):
            self.detected_at = time.time()
            self.say(f"the pod was interrupted during the launch: {started.message}")
            return started
        self._launched(started)
        return started

    def _launched(self, launched: Launched) -> None:
        t = self.target
        self._relaunched = launched
        self.launch_time = self.launch_time or time.time()
        if launched.attached:
            if launched.run_id != self.run_id:
                self.say(
                    f"training is already running on {t.label} (run {launched.run_id}, attempt "
                    f"{launched.attempt}); attaching to it, nothing new was started"
                )
            else:
                self.say(f"run {launched.run_id} attempt {launched.attempt} is already running; attaching to it")
            self.ledger.adopt(launched.run_id, self.say)
        for skipped in launched.raw.get(pc.ResultKey.SKIPPED_CHECKPOINTS) or []:
            self.say(f"skipped incomplete checkpoint {skipped}")
        self.ledger.launched(launched, t, recovered=self._recovered, detected_at=self.detected_at, say=self.say)
        self._recovered = None

    def _gave_up(self, outcome: Interrupted, exit_code: int, message: str) -> int:
        """Recovery decided not to (or could not) bring the run back."""
        t = self.target
        self._settle_loss(outcome.checkpoint or self.ledger.last_checkpoint)
        self.record.status = "preempted" if outcome.kind in RECOVERABLE else "interrupted"
        self.record.exit_code = exit_code
        if outcome.kind in RECOVERABLE:
            self.ledger.tell(Event.GAVE_UP, message=message)
        if outcome.kind == StopCause.KILLED and not self.keep_pod:
            # The pod still runs but nothing trains on it any more.
            stop = t.stop_now(self.say)
            self.record.pod_stop = stop.text
            self.say(f"pod {t.pod_id} {stop.text}")
        self.ledger.close_billing(None, t)
        self.save_record()
        self.console.end_partial()
        self.say(message)
        report.print_accounting(self.say, self.record, t, self.ledger.prices())
        return exit_code

    def _abandon_recovery(self, outcome: Interrupted) -> int:
        """Ctrl-C during a recovery, before training was relaunched: whatever the recovery resumed,
        started or created would run (and bill) with nothing training on it, so it is stopped
        (not with --keep-pod); then exit 130 with the command that resumes the run."""
        t = self.target
        self._settle_loss(outcome.checkpoint or self.ledger.last_checkpoint)
        self._recovered = None
        self.record.status, self.record.exit_code = "interrupted", EXIT_INTERRUPTED
        stopped_at = None
        head = "interrupted during the recovery, before training was relaunched"
        if not self.on_pod:
            self.say(head)
        elif self.keep_pod:
            self.say(
                f"{head}: pod {t.pod_id} is left as it is (--keep-pod), with nothing training on it; "
                f"`python -m runner stop{self.stack_flag()}` stops it"
            )
        else:
            self.say(f"{head}: nothing trains on pod {t.pod_id}; making sure it is stopped")
            t.hold(self.run_id, None, HoldReason.ABANDON, self.say)
            stop = t.abandon_recovery(self.say)
            self.record.pod_stop, stopped_at = stop.text, stop.stopped_at
            self.say(f"pod {t.pod_id} {stop.text}")
        self.ledger.close_billing(stopped_at, t)
        self.save_record()
        self.say(
            f"run {self.run_id} is not training; its checkpoints are on the volume. "
            f"Resume with `{self.resume_command()}`"
        )
        report.print_accounting(self.say, self.record, t, self.ledger.prices())
        return EXIT_INTERRUPTED

    # -- the end ----------------------------------------------------------------------------------
    def detached(self, launched: Launched, *, by_request: bool) -> int:
        self.record.status = "detached"
        self.save_record()
        # The watcher first: after a closed terminal's SIGHUP, printing may be the next thing to fail.
        watcher = None
        if self.on_pod and self.options.spawn_watcher:
            from runner.watcher.background import leave_a_watcher

            watcher = leave_a_watcher(self.settings, self.stack_flag())
        self.console.end_partial()
        report.detached_lines(
            self.say, self.target, launched, by_request=by_request, keep_pod=self.keep_pod, stack_flag=self.stack_flag()
        )
        if watcher:
            self.say(watcher)
        return 0 if by_request else EXIT_INTERRUPTED

    def finish(self, launched: Launched, ended: Ended) -> int:
        ended = acknowledge(self.target.connect, launched, ended, self.say)
        code = ended.exit_code if isinstance(ended.exit_code, int) else (0 if ended.state == "succeeded" else 1)
        stop = self.target.finish(keep=self.keep_pod, say=self.say, deadline_s=timeouts.current().stop_verify_s)
        self.ledger.finished(
            launched, state=ended.state, code=code, checkpoint=ended.checkpoint, stop=stop, target=self.target
        )
        self.save_record()
        took = report.iso_seconds(ended.started_at, ended.ended_at)
        if took is None and self.launch_time is not None:
            took = time.time() - self.launch_time
        report.summary(
            self.say,
            self.record,
            self.target,
            launched,
            ended,
            code,
            stop,
            took=took,
            stack_flag=self.stack_flag(),
            prices=self.ledger.prices(),
            loss=self.view.loss.points,
            advice=self.ledger.checkpoint_advice(self.cfg.values.get("save_steps")),
        )
        return code


__all__ = ["LaunchError", "TrainSession"]
