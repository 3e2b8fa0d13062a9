"""Automatic recovery from spot preemption: notice it fast, bring the pod back, resume the run.

Detection (while runner/train/attempt.py follows an attempt), from two sides:
    the log     the supervisor's footer/notes (`end state=preempted`, `SIGTERM received`), seen the
                moment they are written; the API then says who stopped the pod (confirm_interruption)
    the API     PodWatch reads the pod every POLL_S seconds in a background thread (one cheap GET +
                GraphQL read) and stops the follower as soon as the pod is not RUNNING. This covers a
                supervisor SIGKILLed without SIGTERM (state.json still says "running") and an SSH link
                that dies silently (a vanished host sends no TCP reset)
    SSH drops   every drop asks the API too (the pod target's after_disconnect)

What each finding means (runner/pod/pod.py StackPod.state on the pod's lastStatusChange; when GraphQL is
gone, REST v2 has no such text and an EXITED spot pod that neither the runner nor the pod itself
stopped, runner/pod/stops.py, counts as "Outbid"):
    RUNNING                          a network blip: reconnect and continue (logfollow does that)
    EXITED/TERMINATED "Outbid: ..."  preempted -> recover
    TERMINATED / not found           gone -> recreate through the stack
    EXITED "Exited by user"          stopped by the user (or by the pod itself after training
                                     ended, which the footer tells): never fought, report and exit
    EXITED "Exited by RunPod"/ERROR  stopped by the platform: report and exit
    footer "preempted", pod RUNNING  training got SIGTERM but the pod stayed up ("killed"): relaunch
    footer succeeded/failed          the normal end

Recovery (AutoRecovery.decide), bounded by --max-recoveries and --budget-usd:
    1. resume the same pod (spot: podBidResume with the stack's bid; its host has the image cached,
       the venv and checkpoints are on the volume) and wait for SSH (runner/pod/lifecycle.py);
    2. if that is impossible, recreate it through the stack (runner.pod.stack), re-read the outputs (new
       pod id, maybe market on-demand) and reach the new pod:
       - the pod is gone: `pulumi up --refresh --yes` (the refresh drops it, the up creates one);
       - it still exists (no capacity on its host, or spot withdrawn or GraphQL retired while the
         stack's spot_fallback is "on-demand"): `pulumi up --refresh --yes --replace <pod_urn>`, because a refresh keeps a
         stopped pod; the provider deletes it first, then creates the new one (maybe elsewhere,
         maybe on-demand). Stacks without the pod_urn output get the plain command and a warning;
    3. the session relaunches remote_train.sh with the same run id: the launcher counts the
       attempt and resumes from the newest complete checkpoint.

A strategy only decides and brings the pod back: it returns a Decision, and the session does its
own counting (recoveries, accounting) from it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol

from infra.advice import SPOT_FALLBACK
from remote.podside.contract import Event
from runner.errors import EXIT_POD, PodGone, PodNoCapacity, RunnerError, SpotUnavailableError
from runner.output import plural
from runner.paths import StatePaths
from runner.pod.claim import claim_recovery
from runner.train.events import RECOVERABLE, RECOVERED_ELSEWHERE, Decision, Interrupted, StopCause
from runner.train.targets.base import Recoverable, Target
from runner.types import Say


@dataclass(frozen=True)
class RunContext:
    """What a strategy may know about the run it decides for."""

    run_id: str
    resume_command: str  # the command that continues this run by hand
    last_checkpoint: str | None
    recoveries_done: int  # automatic recoveries by this command so far
    spent_usd: float | None  # estimated pod cost of this command so far
    say: Say
    tell: Callable[[Event, str], None] = lambda _event, _message: None  # an event of the run's timeline


class Recovery(Protocol):
    def decide(self, interruption: Interrupted, target: Target, run: RunContext) -> Decision: ...


class ReportAndExit:
    """No automatic recovery: say what happened and how to resume, ExitCode.POD."""

    def decide(self, interruption: Interrupted, target: Target, run: RunContext) -> Decision:
        ckpt = interruption.checkpoint or run.last_checkpoint
        where = f"the newest complete checkpoint ({ckpt})" if ckpt else "the newest complete checkpoint, if any"
        return Decision(
            False,
            EXIT_POD,
            (
                f"{interruption.message}. Training of run {run.run_id} stopped; its checkpoints are on the "
                f"volume. Resume with `{run.resume_command}`: it starts the pod again and continues "
                f"from {where}."
            ),
        )


class AutoRecovery:
    """The Recovery strategy of `runner train` on the stack's pod (see the module docstring)."""

    def __init__(self, max_recoveries: int, budget_usd: float | None = None, *, paths: StatePaths | None = None):
        self.max_recoveries = max_recoveries
        self.budget_usd = budget_usd
        self.paths = paths  # the stack's state dir: one recovery at a time on this machine (claim.py)

    def decide(self, interruption: Interrupted, target: Target, run: RunContext) -> Decision:
        t = target.recoverable()
        if interruption.kind not in RECOVERABLE or t is None:
            # A stop by the user or RunPod, or the budget: not ours to undo.
            return ReportAndExit().decide(interruption, target, run)
        resume = f"Resume with `{run.resume_command}`"
        done = run.recoveries_done
        if done >= self.max_recoveries:
            return Decision(
                False,
                EXIT_POD,
                (
                    f"{interruption.message}. Not recovering: this run already recovered {plural(done, 'time')}, the limit set by "
                    f"--max-recoveries {self.max_recoveries}. The checkpoints are on the volume. {resume} "
                    "(add --max-recoveries N to allow more)."
                ),
            )
        spent = run.spent_usd
        if self.budget_usd and spent is not None and spent >= self.budget_usd:
            return Decision(
                False,
                EXIT_POD,
                (
                    f"{interruption.message}. Not recovering: this run has cost about ${spent:.2f} of its "
                    f"${self.budget_usd:.2f} budget (--budget-usd). {resume} with a larger --budget-usd."
                ),
            )
        run.say(f"{interruption.message}; recovering automatically ({done + 1} of at most {self.max_recoveries})")
        try:
            with claim_recovery(self.paths, say=run.say) if self.paths is not None else nullcontext():
                again = t.observe()
                if again is not None and again.state.up:
                    # Another runner or watcher brought it back while this one waited for the claim.
                    run.say(f"pod {t.pod_id} runs again (another runner or watcher recovered it)")
                    return Decision(True, message="", prepared=False, recovered=RECOVERED_ELSEWHERE)
                run.tell(
                    Event.RECOVERING, f"recovery {done + 1} of at most {self.max_recoveries}: {interruption.message}"
                )
                how = t.wait_for_gpu(lambda: self._bring_back(interruption.kind, t, run.say), run.say)
        except SpotUnavailableError as e:
            return Decision(False, e.exit_code, f"recovery stopped: {e.message}")
        except RunnerError as e:
            return Decision(False, e.exit_code, f"recovery stopped: {e.message} {resume}.")
        return Decision(True, message="", prepared=True, recovered=how)

    @staticmethod
    def _bring_back(kind: str, t: Recoverable, say: Say) -> str:
        """resumed | running (relaunch on the pod as it is) | recreated."""
        if kind == StopCause.GONE:
            t.recreate(say)
            return "recreated"
        try:
            return "resumed" if t.resume(say) else "running"
        except PodGone as e:
            say(f"{e.headline}; recreating it through the stack")
            t.recreate(say)
            return "recreated"
        except PodNoCapacity as e:
            say(f"{e.headline}; replacing it through the stack (its host has no free GPU)")
        except SpotUnavailableError as e:
            if t.spot_fallback != "on-demand":
                raise SpotUnavailableError(
                    f"RunPod refused to resume spot pod {t.pod_id} ({e.headline}), and the stack's spot_fallback "
                    "is 'fail', so the runner does not switch to on-demand",
                    hint=f"Allow it with {SPOT_FALLBACK}, then run the same `runner train` command again.",
                ) from None
            say(
                "spot is unavailable and the stack allows on-demand (spot_fallback=on-demand); "
                "replacing the pod through the stack"
            )
        # The pod still exists (stopped): only a replacement moves it to another host or market.
        t.recreate(say, replace=True)
        return "recreated"


__all__ = ["AutoRecovery", "Recovery", "ReportAndExit", "RunContext"]
