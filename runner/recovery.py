"""Automatic recovery from spot preemption: notice it fast, bring the pod back, resume the run.

Detection (while runner/train.py follows an attempt), from two sides:
    the log     the supervisor's footer/notes (`end state=preempted`, `SIGTERM received`), seen the
                moment they are written; the API then says who stopped the pod (confirm_interruption)
    the API     PodWatch reads the pod every POLL_S seconds in a background thread (one cheap GET +
                GraphQL read) and stops the follower as soon as the pod is not RUNNING. This covers a
                supervisor SIGKILLed without SIGTERM (state.json still says "running") and an SSH link
                that dies silently (a vanished host sends no TCP reset)
    SSH drops   every drop asks the API too (runner/targets.py after_disconnect)

What each finding means (runner.pod.classify on the pod's lastStatusChange):
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
       the venv and checkpoints are on the volume) and wait for SSH (runner.pod.ensure_running);
    2. if that is impossible, recreate it through the stack (runner.stack), re-read the outputs (new
       pod id, maybe market on-demand) and reach the new pod:
       - the pod is gone: `pulumi up --refresh --yes` (the refresh drops it, the up creates one);
       - it still exists (no capacity on its host, or spot withdrawn while the stack's spot_fallback
         is "on-demand"): `pulumi up --refresh --yes --replace <pod_urn>`, because a refresh keeps a
         stopped pod; the provider deletes it first, then creates the new one (maybe elsewhere,
         maybe on-demand). Stacks without the pod_urn output get the plain command and a warning;
    3. runner/train.py relaunches remote_train.sh with the same run id: the launcher counts the
       attempt and resumes from the newest complete checkpoint.

Accounting: Progress reads training progress from the log lines (see STEP_RE) so that the steps
and the time redone after a resume can be reported.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Callable

from runner.errors import EXIT_POD, PodGone, PodNoCapacity, RunnerError, SpotUnavailableError
from runner.pod import GONE, PREEMPTED, RUNNING_STATE, STARTING

# Seconds; module constants so tests can shorten them.
POLL_S = 5.0                  # PodWatch: one API read this often while following
CONFIRM_S = 20.0              # after a "preempted" footer: how long the API may take to show who stopped the pod
CONFIRM_POLL_S = 0.5

KILLED = "killed"             # SIGTERM reached training, the pod stayed RUNNING
RECOVERABLE = (PREEMPTED, GONE, KILLED)

# "step 12/400", "global_step=120", "Step: 7" (not "max_steps"); tqdm bars: " 12/400 [00:03<..."
STEP_RE = re.compile(r"(?<![A-Za-z0-9_])(?:global_)?step[\s=:]*(\d+)", re.IGNORECASE)
TQDM_RE = re.compile(r"(\d+)/(\d+) \[")
CHECKPOINT_STEP_RE = re.compile(r"checkpoint-(\d+)/?$")


def checkpoint_step(path: str | None) -> int | None:
    """N of a .../checkpoint-N path (HF Trainer layout), else None."""
    m = CHECKPOINT_STEP_RE.search(path or "")
    return int(m.group(1)) if m else None


class Progress:
    """The highest training step seen in one attempt's log lines, and when each step first showed up.

    Pragmatic: the smoke trainer prints `step N/M`, many trainers print `step N` or `global_step=N`,
    and a tqdm bar ends its (\\r-joined) line with `N/M [`. Lines of the launcher are ignored.
    """

    def __init__(self, started: float):
        self.started = started
        self.max_step: int | None = None
        self.first_seen: dict[int, float] = {}

    def feed(self, text: str, now: float | None = None) -> None:
        if text.startswith(("=====", "[remote_train]")):
            return
        tail = text.rsplit("\r", 1)[-1]
        steps = [int(m.group(1)) for m in STEP_RE.finditer(tail)] or \
                [int(m.group(1)) for m in TQDM_RE.finditer(tail)]
        if not steps:
            return
        step = max(steps)
        when = time.time() if now is None else now
        self.first_seen.setdefault(step, when)
        if self.max_step is None or step > self.max_step:
            self.max_step = step

    def lost_since(self, resume_step: int | None, stopped_at: float) -> tuple[int, float]:
        """(steps, seconds) of work done after the checkpoint the next attempt resumes from."""
        base = resume_step or 0
        steps = max(0, (self.max_step or base) - base)
        since = self.first_seen.get(base) if steps else None
        if since is None:
            # The checkpoint's step was not seen in this attempt: everything it did is redone.
            since = self.started
        return steps, round(max(0.0, stopped_at - max(since, self.started)), 1)


class PodWatch:
    """Reads the pod through the API every interval_s in a daemon thread; stops at the first
    finding that the pod is not running (verdict = (state, pod)) and calls on_verdict()."""

    def __init__(self, observe: Callable[[], tuple[str, object] | None], interval_s: float,
                 on_verdict: Callable[[], None]):
        self.observe, self.interval_s, self.on_verdict = observe, interval_s, on_verdict
        self.verdict: tuple[str, object] | None = None
        self.detected_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pod-watch", daemon=True)

    def start(self) -> "PodWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                seen = self.observe()
            except Exception:      # noqa: BLE001 - the follower must never die of a watcher hiccup
                seen = None
            if seen is None or seen[0] in (RUNNING_STATE, STARTING):
                continue
            self.detected_at = time.time()
            self.verdict = seen
            self.on_verdict()
            return


def confirm_interruption(observe: Callable[[], tuple[str, object] | None], *, deadline_s: float,
                         poll_s: float) -> tuple[str, object] | None:
    """After training got SIGTERM: wait until the API shows the pod not running -> (state, pod),
    or None when it stays RUNNING (the container kept running: relaunch there)."""
    end = time.monotonic() + deadline_s
    while True:
        seen = observe()
        if seen is not None and seen[0] not in (RUNNING_STATE, STARTING):
            return seen
        if time.monotonic() >= end:
            return None
        time.sleep(poll_s)


class AutoRecovery:
    """The Recovery strategy of `runner train` on the stack's pod (see the module docstring)."""

    def __init__(self, max_recoveries: int, budget_usd: float | None = None):
        self.max_recoveries = max_recoveries
        self.budget_usd = budget_usd

    def decide(self, interruption, session):
        from runner.train import Decision, ReportAndExit

        t = session.target
        if interruption.kind not in RECOVERABLE:
            # A stop by the user or RunPod, or the budget: not ours to undo.
            return ReportAndExit().decide(interruption, session)
        resume = f"Resume with `{session.resume_command()}`"
        done = session.recoveries
        if done >= self.max_recoveries:
            return Decision(False, EXIT_POD, (
                f"{interruption.message}. Not recovering: this run already recovered {done} time(s), the limit set by "
                f"--max-recoveries {self.max_recoveries}. The checkpoints are on the volume. {resume} "
                "(add --max-recoveries N to allow more)."))
        spent = t.spent(time.time())
        if self.budget_usd and spent is not None and spent >= self.budget_usd:
            return Decision(False, EXIT_POD, (
                f"{interruption.message}. Not recovering: this run has cost about ${spent:.2f} of its "
                f"${self.budget_usd:.2f} budget (--budget-usd). {resume} with a larger --budget-usd."))
        session.recoveries += 1
        session.say(f"{interruption.message}; recovering automatically "
                    f"({session.recoveries} of at most {self.max_recoveries})")
        try:
            how = self._bring_back(interruption.kind, t, session.say)
        except SpotUnavailableError as e:
            return Decision(False, e.exit_code, f"recovery stopped: {e.message}")
        except PodNoCapacity as e:
            # Only after the plain recreate of a stack without pod_urn: the refresh kept the stopped pod.
            return Decision(False, e.exit_code, (
                f"recovery stopped: {e.message} `pulumi up --refresh` kept the stopped pod (a refresh does not "
                f"replace a stopped pod). Run `pulumi up` once so the stack exports pod_urn (then the runner "
                f"replaces such a pod itself), or retry later: {session.resume_command()}"))
        except RunnerError as e:
            return Decision(False, e.exit_code, f"recovery stopped: {e.message} {resume}.")
        session.recovered(how)
        return Decision(True, message="", prepared=True)

    @staticmethod
    def _bring_back(kind: str, t, say) -> str:
        """resumed | running (relaunch on the pod as it is) | recreated."""
        if kind == GONE:
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
                    "then run the same `runner train` command again.") from None
            say("spot is unavailable and the stack allows on-demand (spot_fallback=on-demand); "
                "replacing the pod through the stack")
        # The pod still exists (stopped): only a replacement moves it to another host or market.
        t.recreate(say, replace=True)
        return "recreated"


__all__ = ["AutoRecovery", "CONFIRM_S", "KILLED", "POLL_S", "PodWatch", "Progress", "RECOVERABLE",
           "checkpoint_step", "confirm_interruption"]
