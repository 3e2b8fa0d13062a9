"""`runner train`: one run from stack outputs to training's exit code, as a loop of attempts.

    checks (no money)  settings, the config (exists, YAML, output_dir), stack outputs, repo URL
    prepare            the target is reachable (pod: resumed/started, SSH banner)   targets/
    launch             the pod-side launcher over bash on stdin -> RT_RESULT           launch.py
    follow             the log from that offset across SSH drops, until the end      attempt.py
    finish             ack the end, summary, make sure the pod stopped, record       report.py
An interruption (the pod preempted/stopped/gone under the run, or the budget reached) goes to a
Recovery strategy (recovery.py), which decides to launch the next attempt or to give up; the
session does the counting (accounting.py, record.py). Ctrl-C while following detaches (training
continues, the pod stops itself); Ctrl-C during a recovery, before training was relaunched, stops
the pod the recovery brought up, then exits 130.
"""

from __future__ import annotations

import argparse
import re
import time

from remote.podside import contract as pc
from remote.podside.contract import StateKey
from runner import timeouts
from runner.errors import EXIT_INTERRUPTED, RunnerError
from runner.settings import Settings
from runner.train import checkpoint_advice, report
from runner.train import record as runrecord
from runner.train.accounting import Accounts
from runner.train.attempt import follow_attempt
from runner.train.config import TrainConfig, uncommitted_warning
from runner.train.console import Console, LogView
from runner.train.events import RECOVERABLE, Detached, Ended, Interrupted, Launched, StopCause, TargetInterrupted
from runner.train.launch import LaunchError, launch_surviving_drops, launcher_env, mask_url
from runner.train.losscurve import LossCurve
from runner.train.recovery import Recovery, ReportAndExit, RunContext
from runner.train.targets import Target
from runner.types import TargetKind


def default_run_id(cfg: TrainConfig) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", cfg.name).strip("-._") or "run"
    return f"{stem[:40]}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


class TrainSession:
    def __init__(
        self,
        args: argparse.Namespace,
        settings: Settings,
        target: Target,
        cfg: TrainConfig,
        *,
        recovery: Recovery | None = None,
        console: Console | None = None,
        remote_commit: str | None = None,
    ):
        self.args = args
        # The branch's commit `git ls-remote` saw seconds ago: the first launch's pod skips its `git fetch`
        # when it already has it (RT_REPO_COMMIT). Not for relaunches after a recovery: they fetch as ever.
        self.remote_commit = remote_commit
        self.settings = settings
        self.target = target
        self.cfg = cfg
        self.recovery = recovery or ReportAndExit()
        self.console = console or Console(settings.secrets())
        self.run_id: str = args.run_id or default_run_id(cfg)
        self.on_pod = target.kind == TargetKind.POD
        self.keep_pod = bool(args.keep_pod) and self.on_pod
        self.last_checkpoint: str | None = None
        self.launch_time: float | None = None
        self.record_paths = runrecord.record_paths(settings.state_dir, settings.stack, target.kind, target.label)
        # Reusing a run id continues its record: attempts accumulate (recovery accounting).
        previous = runrecord.load(self.record_paths, self.run_id) if args.run_id else None
        self.record = previous or runrecord.RunRecord(
            run_id=self.run_id, stack=settings.stack, target=target.kind, target_name=target.label, config=cfg.rel_path
        )
        self.record.config, self.record.output_dir, self.record.workspace = (
            cfg.rel_path,
            cfg.output_dir,
            target.workspace,
        )
        self.record.pod_id, self.record.keep_pod = target.pod_id, self.keep_pod
        self.record.status, self.record.exit_code = "launching", None
        outputs = getattr(target, "outputs", None)
        self.accounts = Accounts(
            self.record, on_pod=self.on_pod, gpu_count=outputs.gpu_count if outputs is not None else None
        )
        self.view = LogView(
            self.console,
            self.accounts.progress,
            LossCurve((int(p[0]), float(p[1])) for p in self.record.loss_points if len(p) == 2),
        )
        self.recoveries = 0  # automatic recoveries by this command
        self.detected_at: float | None = None  # when the current interruption was noticed
        self._recovered: str | None = None  # how the pod came back: resumed | running | recreated
        self._announced: set[tuple[str, int]] = set()
        self._relaunched: Launched | None = None  # set as soon as a launch succeeded

    # -- helpers ----------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        self.console.say(message)

    def stack_flag(self) -> str:
        return f" --stack {self.settings.stack}" if self.settings.sources.get("PULUMI_STACK") == "command line" else ""

    def resume_command(self) -> str:
        where = {TargetKind.LOCAL: " --local", TargetKind.HOST: f" --host {self.target.label}"}.get(
            self.target.kind, ""
        )
        return f"python -m runner train --config {self.cfg.rel_path} --run-id {self.run_id}{where}{self.stack_flag()}"

    def save_record(self) -> None:
        self.record.loss_points = [[step, loss] for step, loss in self.view.loss.thinned()]
        try:
            runrecord.save(self.record_paths, self.record)
        except OSError as e:
            self.say(f"warning: could not write the run record under {self.record_paths.stack_dir} ({e.strerror})")

    def _prepared(self) -> None:
        """The target is reachable: this command pays for it from target.billing_from."""
        market = getattr(self.target, "market", None)
        if self.on_pod and self.target.billing_from is not None:
            self.accounts.ledger.open(self.target.billing_from, self.target.cost_per_hr, market)
        self.accounts.ledger.reprice(self.target.cost_per_hr, market)

    def _close_billing(self, stopped_at: float | None, *, close: bool = True) -> None:
        self.accounts.close_billing(stopped_at, close=close, cost_per_hr=self.target.cost_per_hr)

    def _prices(self) -> list[report.Price]:
        """This command's pod time per market and price (more than one after a move to on-demand)."""
        return [report.Price(m, r, secs, usd) for m, r, secs, usd in self.accounts.ledger.by_price(time.time())]

    def _context(self) -> RunContext:
        return RunContext(
            self.run_id,
            self.resume_command(),
            self.last_checkpoint,
            self.recoveries,
            self.accounts.spent(time.time()),
            self.say,
        )

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> int:
        t = self.target
        repo_url, branch = t.repo()
        warning = uncommitted_warning(self.cfg, self.settings.project_root)
        if warning:
            self.say(f"warning: {warning}")
        self.save_record()
        t.prepare(self.say)
        self._prepared()
        env = launcher_env(
            workspace=t.workspace,
            repo_url=repo_url,
            branch=branch,
            config=self.cfg.rel_path,
            train_script=self.settings.train_script,
            run_id=self.run_id,
            stop_pod=t.stops_pod and not self.keep_pod,
            detach=bool(self.args.detach),
            session=t.session,
            idle_stop_minutes=t.idle_stop_minutes,
            commit=self.remote_commit,
        )
        launched, interrupted = self._launch_or_interruption(env)
        env.pop(pc.Inputs.REPO_COMMIT, None)  # a relaunch, minutes or hours later, fetches the branch
        while True:
            outcome: Ended | Interrupted | Detached | None = interrupted
            if launched is not None:
                if self.args.detach:
                    return self.detached(launched, by_request=True)
                try:
                    outcome = self.follow(launched)
                except KeyboardInterrupt:  # also before the first line: detach all the same
                    outcome = Detached()
                if isinstance(outcome, Detached):
                    return self.detached(launched, by_request=False)
                if isinstance(outcome, Ended):
                    return self.finish(launched, outcome)
            assert isinstance(outcome, Interrupted)
            self._interrupted(launched, outcome)
            self._relaunched = None
            try:
                decision = self.recovery.decide(outcome, t, self._context())
                if decision.retry:
                    self.recoveries += 1
                    self._recovered = decision.recovered
                    if decision.message:
                        self.say(decision.message)
                    if not decision.prepared:
                        t.prepare(self.say)
                    self._prepared()
                    launched, interrupted = self._launch_or_interruption(env, recovering=True)
                    continue
            except KeyboardInterrupt:
                if self._relaunched is not None:  # training runs again: detach as usual
                    return self.detached(self._relaunched, by_request=False)
                return self._abandon_recovery(outcome)
            self._settle_loss(outcome.checkpoint or self.last_checkpoint)
            self.record.status = "preempted" if outcome.kind in RECOVERABLE else "interrupted"
            self.record.exit_code = decision.exit_code
            if outcome.kind == StopCause.KILLED and not self.keep_pod:
                # The pod still runs but nothing trains on it any more.
                stop = t.stop_now(self.say)
                self.record.pod_stop = stop.text
                self.say(f"pod {t.pod_id} {stop.text}")
            self._close_billing(None)
            self.save_record()
            self.console.end_partial()
            self.say(decision.message)
            report.print_accounting(self.say, self.record, t, self._prices())
            return decision.exit_code

    def follow(self, launched: Launched) -> Ended | Interrupted | Detached:
        start = self.view.follow_start(launched, self.target.connect)
        self._settle_loss(launched.resume_from)
        self._announce(launched)
        self.detected_at = None
        outcome = follow_attempt(self.target, launched, start, self.view, say=self.say, extra_check=self._budget_check)
        self.detected_at = outcome.detected_at
        return outcome.result

    def _settle_loss(self, resume_from: str | None) -> None:
        if self.accounts.pending is None:
            return
        self.accounts.settle_loss(resume_from, self.detected_at or time.time())
        self.view.progress = self.accounts.progress
        self.save_record()

    def _announce(self, launched: Launched) -> None:
        key = (launched.run_id, launched.attempt)
        if key not in self._announced:
            self._announced.add(key)
            self.say(report.announce_line(self.target, launched, getattr(self.target, "market", None)))

    def _budget_check(self) -> None:
        budget = getattr(self.args, "budget_usd", None)
        if not budget or not self.on_pod:
            return
        spent = self.accounts.spent(time.time())
        if spent is not None and spent >= budget:
            self.say(f"budget reached: about ${spent:.2f} of ${budget:.2f}; stopping pod {self.target.pod_id}")
            stop = self.target.stop_now(self.say)
            self.record.pod_stop = f"{stop.text} (budget)"
            raise TargetInterrupted(
                f"the run reached its budget of ${budget:.2f} (--budget-usd) and pod {self.target.pod_id} {stop.text}",
                kind=StopCause.BUDGET,
            )

    def _launch_or_interruption(
        self, env: dict[str, str], *, recovering: bool = False
    ) -> tuple[Launched | None, Interrupted | None]:
        """The launch, or the interruption that hit the pod while it launched (preempted or stopped
        under a dropped launch: the SSH drop's API check says so); recovery then decides as for a
        running attempt."""
        try:
            return self._launch_or_release(env, recovering=recovering), None
        except TargetInterrupted as e:
            self.detected_at = time.time()
            self.say(f"the pod was interrupted during the launch: {e.message}")
            return None, Interrupted(e.kind, e.message, None)

    def _launch_or_release(self, env: dict[str, str], *, recovering: bool = False) -> Launched:
        """launch(); on failure undo what prepare() started. A Ctrl-C while recovering is left to
        run()'s _abandon_recovery, which also stops a pod the recovery only resumed."""
        t = self.target
        self.say(
            f"launching run {self.run_id}: config {self.cfg.rel_path}, repo {mask_url(env[pc.Inputs.REPO_URL])} "
            f"({env[pc.Inputs.REPO_BRANCH]}), workspace {t.workspace}"
        )
        try:
            known = max((a.attempt for a in self.record.attempts), default=0)
            launched = launch_surviving_drops(
                t.connect,
                env,
                label=t.label,
                say=self.say,
                known_attempt=known,
                on_drop=lambda error, n: t.after_disconnect(error, n, self.say),
                known_programs=self.record_paths.stack_dir / "podside",
            )
        except TargetInterrupted:
            raise  # the pod went away under the launch: recovery decides
        except (RunnerError, KeyboardInterrupt) as e:
            self.record.status = "failed"
            self.save_record()
            if not (recovering and isinstance(e, KeyboardInterrupt)):
                t.release_unused(self.say)
            raise
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
            self._adopt(launched.run_id)
        else:
            resume = f", resuming from {launched.resume_from}" if launched.resume_from else ", from scratch"
            self.say(f"started run {launched.run_id} attempt {launched.attempt}{resume}")
        for skipped in launched.raw.get(pc.ResultKey.SKIPPED_CHECKPOINTS) or []:
            self.say(f"skipped incomplete checkpoint {skipped}")
        self.record.log, self.record.state_file = launched.log, launched.state_file
        self.record.status = "running"
        self.record.pod_id = t.pod_id
        a = self.record.attempt(launched.attempt)
        if a is None:
            a = runrecord.AttemptRecord(
                attempt=launched.attempt,
                log_offset=launched.log_offset,
                resume_from=launched.resume_from,
                status=launched.status,
                started_at=runrecord.utc_now(),
            )
            self.record.attempts.append(a)
        if self.on_pod:
            a.pod_id, a.market, a.cost_per_hr = t.pod_id, getattr(t, "market", None), t.cost_per_hr
        if self._recovered is not None:
            a.recovery = self._recovered
            if self.detected_at is not None:
                a.recovery_s = round(time.time() - self.detected_at, 1)
            self.record.recoveries = (self.record.recoveries or 0) + 1
            self._recovered = None
        self.save_record()
        return launched

    def _adopt(self, run_id: str) -> None:
        """Follow a run this command did not start: its record (if this machine has one) continues."""
        if run_id == self.run_id:
            return
        if not self.record.attempts:
            self.record_paths.run_file(self.run_id).unlink(missing_ok=True)
        previous = runrecord.load(self.record_paths, run_id)
        if previous is not None:
            previous.status = self.record.status
            self.record = self.accounts.record = previous
            for step, loss in previous.loss_points:  # its loss curve continues too
                self.view.loss.add(int(step), float(loss))
        self.run_id = self.record.run_id = run_id

    def _record_attempt_end(
        self, launched: Launched, state: str, exit_code: int | None, checkpoint: str | None
    ) -> None:
        a = self.record.attempt(launched.attempt)
        if a is not None:
            a.ended_at, a.state, a.exit_code, a.last_checkpoint = runrecord.utc_now(), state, exit_code, checkpoint
        if checkpoint:
            self.last_checkpoint = self.record.last_checkpoint = checkpoint

    def _interrupted(self, launched: Launched | None, outcome: Interrupted) -> None:
        """An attempt ended early (launched is None: the pod went away while it was being launched)."""
        now = self.detected_at or time.time()
        if launched is not None:
            self._record_attempt_end(launched, outcome.kind, None, outcome.checkpoint)
        attempt = self.record.attempt(launched.attempt) if launched is not None else None
        self.accounts.interrupted(
            attempt,
            outcome.kind,
            now,
            billing_stopped=outcome.kind != StopCause.KILLED,
            cost_per_hr=self.target.cost_per_hr,
        )
        self.save_record()

    def _abandon_recovery(self, outcome: Interrupted) -> int:
        """Ctrl-C during a recovery, before training was relaunched: whatever the recovery resumed,
        started or created would run (and bill) with nothing training on it, so it is stopped
        (not with --keep-pod); then exit 130 with the command that resumes the run."""
        t = self.target
        self._settle_loss(outcome.checkpoint or self.last_checkpoint)
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
            stop = t.abandon_recovery(self.say)
            self.record.pod_stop, stopped_at = stop.text, stop.stopped_at
            self.say(f"pod {t.pod_id} {stop.text}")
        self._close_billing(stopped_at)
        self.save_record()
        self.say(
            f"run {self.run_id} is not training; its checkpoints are on the volume. "
            f"Resume with `{self.resume_command()}`"
        )
        report.print_accounting(self.say, self.record, t, self._prices())
        return EXIT_INTERRUPTED

    # -- the end ----------------------------------------------------------------------------------
    def detached(self, launched: Launched, *, by_request: bool) -> int:
        self.console.end_partial()
        self.record.status = "detached"
        self.save_record()
        report.detached_lines(
            self.say, self.target, launched, by_request=by_request, keep_pod=self.keep_pod, stack_flag=self.stack_flag()
        )
        return 0 if by_request else EXIT_INTERRUPTED

    def acknowledge(self, launched: Launched) -> dict | None:
        """Tell the pod we saw the end (it then stops without waiting RT_ACK_WAIT); read the final state."""
        ack = pc.VolumePaths(launched.state_file.rsplit("/", 2)[0]).ack_file
        try:
            with self.target.connect() as conn:
                state = pc.parse_json_object(conn.read_file(launched.state_file))
                conn.write_file(ack, pc.ack_text(launched.run_id, launched.attempt).encode(), mode=0o644)
                return state
        except RunnerError as e:
            self.say(
                f"could not confirm the end to the pod ({e.message}); it stops itself after "
                f"{timeouts.current().ack_wait_s:g}s anyway"
            )
            return None

    def finish(self, launched: Launched, ended: Ended) -> int:
        final = self.acknowledge(launched)
        if (
            final
            and final.get(StateKey.RUN_ID) == launched.run_id
            and final.get(StateKey.ATTEMPT) == launched.attempt
            and final.get(StateKey.STATE) in pc.TERMINAL_STATES
        ):
            ended = Ended(
                final[StateKey.STATE],
                final.get(StateKey.EXIT_CODE),
                final.get(StateKey.LAST_CHECKPOINT) or ended.checkpoint,
                ended.source,
                final.get(StateKey.STARTED_AT),
                final.get(StateKey.ENDED_AT) or ended.ended_at,
            )
        code = ended.exit_code if isinstance(ended.exit_code, int) else (0 if ended.state == "succeeded" else 1)
        stop = self.target.finish(keep=self.keep_pod, say=self.say, deadline_s=timeouts.current().stop_verify_s)
        self._record_attempt_end(launched, ended.state, code, ended.checkpoint)
        self.accounts.attempt_costs(self.record.attempt(launched.attempt), stop.stopped_at or time.time())
        self.record.status = ended.state if ended.state in pc.TERMINAL_STATES else "unknown"
        self.record.exit_code = code
        self.record.pod_stop = stop.text if self.on_pod else None
        self._close_billing(stop.stopped_at)
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
            prices=self._prices(),
            loss=self.view.loss.points,
            advice=self._checkpoint_advice(),
        )
        return code

    def _checkpoint_advice(self) -> str | None:
        found = checkpoint_advice.suggest(
            self.cfg.values.get("save_steps"),
            self.accounts.step_arrivals(),
            self.record.pod_seconds,
            self.record.preemptions,
        )
        return found.text() if found else None


__all__ = ["LaunchError", "TrainSession", "default_run_id"]
