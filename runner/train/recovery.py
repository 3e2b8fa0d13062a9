"""Automatic recovery from spot preemption: notice it fast, bring the pod back, resume the run.

Detection (while runner/train/attempt.py follows an attempt), from two sides:
    the log     the supervisor's footer/notes (`end state=preempted`, `SIGTERM received`), seen the
                moment they are written; the API then says who stopped the pod (confirm_interruption)
    the API     PodWatch reads the pod every POLL_S seconds in a background thread (one cheap GET +
                GraphQL read) and stops the follower as soon as the pod is not RUNNING. This covers a
                supervisor SIGKILLed without SIGTERM (state.json still says "running") and an SSH link
                that dies silently (a vanished host sends no TCP reset)
    SSH drops   every drop asks the API too (the pod target's after_disconnect)

What each finding means (runner/pod/state.py classify on the pod's lastStatusChange; when GraphQL is
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

from dataclasses import dataclass
from typing import Protocol

from runner.errors import EXIT_POD, PodGone, PodNoCapacity, RunnerError, SpotUnavailableError
from runner.output import plural
from runner.train.events import RECOVERABLE, Decision, Interrupted, StopCause
from runner.train.targets import PodTarget, Target
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

    def __init__(self, max_recoveries: int, budget_usd: float | None = None):
        self.max_recoveries = max_recoveries
        self.budget_usd = budget_usd

    def decide(self, interruption: Interrupted, target: Target, run: RunContext) -> Decision:
        if interruption.kind not in RECOVERABLE or not isinstance(target, PodTarget):
            # A stop by the user or RunPod, or the budget: not ours to undo.
            return ReportAndExit().decide(interruption, target, run)
        t = target
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
            how = self._bring_back(interruption.kind, t, run.say)
        except SpotUnavailableError as e:
            return Decision(False, e.exit_code, f"recovery stopped: {e.message}")
        except PodNoCapacity as e:
            # Only after the plain recreate of a stack without pod_urn: the refresh kept the stopped pod.
            return Decision(
                False,
                e.exit_code,
                (
                    f"recovery stopped: {e.message} `pulumi up --refresh` kept the stopped pod (a refresh does not "
                    f"replace a stopped pod). Run `pulumi up` once so the stack exports pod_urn (then the runner "
                    f"replaces such a pod itself), or retry later: {run.resume_command}"
                ),
            )
        except RunnerError as e:
            return Decision(False, e.exit_code, f"recovery stopped: {e.message} {resume}.")
        return Decision(True, message="", prepared=True, recovered=how)

    @staticmethod
    def _bring_back(kind: str, t: PodTarget, say: Say) -> str:
        """resumed | running (relaunch on the pod as it is) | recreated."""
        if kind == StopCause.GONE:
            t.recreate(say)
            return "recreated"
        try:
            return "resumed" if t.resume(say) else "running"
        except PodGone as e:
            say(f"{e.message.split('; ')[0]}; recreating it through the stack")
            t.recreate(say)
            return "recreated"
        except PodNoCapacity as e:
            say(f"{e.message.split('. ')[0]}; replacing it through the stack (its host has no free GPU)")
        except SpotUnavailableError as e:
            policy = t.outputs.spot_fallback if t.outputs is not None else "fail"
            if policy != "on-demand":
                raise SpotUnavailableError(
                    f"RunPod refused to resume spot pod {t.pod_id} ({e.message.split('. ')[0]}), and the stack's "
                    "spot_fallback is 'fail', so the runner does not switch to on-demand. Allow it with "
                    "`pulumi config set spotFallback on-demand` and `pulumi config set maxOnDemandPricePerGpu <USD>`, "
                    "then run the same `runner train` command again."
                ) from None
            say(
                "spot is unavailable and the stack allows on-demand (spot_fallback=on-demand); "
                "replacing the pod through the stack"
            )
        # The pod still exists (stopped): only a replacement moves it to another host or market.
        t.recreate(say, replace=True)
        return "recreated"


__all__ = ["AutoRecovery", "Recovery", "ReportAndExit", "RunContext"]
