"""Follow one attempt from its log offset until it ends, is interrupted, the user detaches, or the link is lost.

Lines come from runner/remote/follow.py (whole lines, across SSH drops, no line twice). The end is seen in
the log (endwatch.py); on the stack's pod a PodWatch asks the API every few seconds, and every SSH drop
asks it too (the target's after_disconnect), so a preemption is noticed at once. How the attempt ended
comes back as a value (AttemptOutcome), never as an exception thrown through the follower's events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from backends.polling import Backoff
from runner import timeouts
from runner.errors import RETRYABLE_SSH
from runner.pod.pod import Seen
from runner.remote.follow import FollowEnd, FollowEvents, FollowPolicy, follow_with_reconnect, gave_up
from runner.remote.shell import Shell
from runner.train.console import LogView
from runner.train.endwatch import EndWatch
from runner.train.events import Detached, Ended, Interrupted, Launched, Lost, StopCause
from runner.train.targets.base import Target, interrupted
from runner.train.watch import PodWatch, confirm_interruption
from runner.types import Say, TargetKind

POD_HINT = (
    "Training keeps running on the pod; check `python -m runner status`, then reattach with "
    "`python -m runner logs --follow`."
)


@dataclass(frozen=True)
class AttemptOutcome:
    result: Ended | Interrupted | Detached | Lost
    detected_at: float  # when an interruption was noticed (now, otherwise)


class _Following(FollowEvents[Shell]):
    """The follower's events for one attempt: lines to the view and the end watch; drops to the pod's verdict."""

    shows_partial = True

    def __init__(self, target: Target, launched: Launched, view: LogView, watch: EndWatch, say: Say):
        self.target, self.launched, self.view, self.watch, self.say = target, launched, view, watch, say
        self.conn: Shell | None = None
        self.pod_watch: PodWatch | None = None
        self.interrupted: Interrupted | None = None  # the pod went away: why following stopped

    def line(self, line: bytes, offset: int) -> None:
        text = line.decode("utf-8", "replace")
        self.view.line(text, self.launched.log, offset)
        self.watch.feed(text)

    def partial(self, data: bytes) -> None:
        self.view.partial(data)

    def should_stop(self) -> bool:
        return self.watch.should_stop(self.conn)

    def dropped(self, error: Exception, attempt: int) -> bool:
        self.conn = None
        verdict = self.pod_watch.verdict if self.pod_watch is not None else None
        if verdict is not None:
            self.interrupted = interrupted(self.target.pod_id, verdict.state, verdict.detail)
            return True
        if attempt == 1:
            self.say(
                f"SSH link lost ({str(error) or type(error).__name__}); reconnecting, the log continues where "
                "it stopped"
            )
        self.interrupted = self.target.after_disconnect(error, attempt, self.say)
        return self.interrupted is not None

    def reconnected(self, conn: Shell, offset: int) -> None:
        self.conn = conn
        self.say("reconnected")


def _first_connection(events: _Following, stop_event: threading.Event) -> Shell | Interrupted | Lost:
    """The first link, with the same patience as after a drop: a preemption right after the launch drops
    the link while it is being opened. The pod watch's verdict ends a pause early."""
    t = timeouts.current()
    backoff = Backoff(t.max_reconnect_wait_s, first_s=0.5, factor=2.0, cap_s=5.0, sleep=stop_event.wait)
    attempt = 0
    while True:
        try:
            return events.target.connect()
        except RETRYABLE_SSH as error:
            attempt += 1
            if backoff.remaining <= 0:
                return Lost(error)
            if events.dropped(error, attempt):
                assert events.interrupted is not None
                return events.interrupted
            backoff.wait()


def follow_attempt(
    target: Target,
    launched: Launched,
    start: int,
    view: LogView,
    *,
    say: Say,
    budget: Callable[[], Interrupted | None] | None = None,
    on_seen: Callable[[Seen], None] | None = None,
) -> AttemptOutcome:
    """budget(): the interruption when the run's budget is reached (it has then stopped the pod), else None.
    on_seen: told of every API read of the pod while following (the GPUs' utilization)."""
    t = timeouts.current()
    watch = EndWatch(
        launched.run_id, launched.attempt, launched.state_file, grace_s=t.end_grace_s, poll_s=t.state_poll_s
    )
    watch.budget = budget
    events = _Following(target, launched, view, watch, say)
    stop_event = threading.Event()
    if target.kind == TargetKind.POD:
        events.pod_watch = PodWatch(target.observe, t.pod_poll_s, stop_event.set, on_seen).start()
    try:
        return _follow(events, start, stop_event)
    except KeyboardInterrupt:
        return AttemptOutcome(Detached(), time.time())
    finally:
        if events.pod_watch is not None:
            events.pod_watch.stop()


def _follow(events: _Following, start: int, stop_event: threading.Event) -> AttemptOutcome:
    target, watch, pod_watch = events.target, events.watch, events.pod_watch
    first = _first_connection(events, stop_event)
    if isinstance(first, Lost):
        return AttemptOutcome(first, time.time())
    stopped: Interrupted | None = first if isinstance(first, Interrupted) else None
    if stopped is None:
        assert not isinstance(first, Interrupted)
        pending = [first]

        def connect() -> Shell:
            events.conn = pending.pop() if pending else target.connect()
            return events.conn

        t = timeouts.current()
        policy = FollowPolicy(
            max_reconnect_wait_s=t.max_reconnect_wait_s, stop_check_interval_s=t.stop_check_interval_s
        )
        followed = follow_with_reconnect(
            connect, events.launched.log, start, events, stop_event=stop_event, policy=policy, keep=target.keep
        )
        if followed.end == FollowEnd.GAVE_UP:
            hint = POD_HINT if target.kind == TargetKind.POD else _gave_up_hint(target)
            return AttemptOutcome(Lost(gave_up(followed, policy, hint=hint)), time.time())
        stopped = events.interrupted or watch.interrupted
    if pod_watch is not None and pod_watch.verdict is not None and watch.footer is None and stopped is None:
        stopped = interrupted(target.pod_id, pod_watch.verdict.state, pod_watch.verdict.detail)
    detected_at = (pod_watch.detected_at if pod_watch is not None else None) or time.time()
    if stopped is not None:
        if stopped.kind != StopCause.BUDGET and watch.note is not None and not watch.note.preempted:
            # The pod stopped itself after training ended, before we read the end (no ack).
            return AttemptOutcome(watch.note, detected_at)
        end = watch.footer or watch.note
        return AttemptOutcome(Interrupted(stopped.kind, stopped.message, end.checkpoint if end else None), detected_at)
    ended = watch.ended or Ended("unknown", None, None, "state")
    if ended.preempted:
        return AttemptOutcome(_sigterm(target, ended, events.say), detected_at)
    return AttemptOutcome(ended, detected_at)


def _gave_up_hint(target: Target) -> str:
    """How to come back to training on a --host or --local target (no pod, no `runner logs`)."""
    hints = "; ".join(f"{what}: `{command}`" for what, command in target.hints(""))
    return f"Training keeps running on {target.label}" + (f"; {hints}." if hints else ".")


def _sigterm(target: Target, ended: Ended, say: Say) -> Interrupted:
    """Training got SIGTERM (the footer says preempted). On the pod the API says by whom: outbid,
    the user (console / `runner stop` stop the container the same way), RunPod, or nobody."""
    if target.kind != TargetKind.POD:
        return Interrupted(
            StopCause.PREEMPTED,
            f"training on {target.label} received SIGTERM (spot preemption or container stop)",
            ended.checkpoint,
        )
    say("training received SIGTERM; asking RunPod what happened to the pod")
    t = timeouts.current()
    seen = confirm_interruption(target.observe, deadline_s=t.confirm_s, poll_s=t.confirm_poll_s)
    if seen is None:
        return Interrupted(
            StopCause.KILLED,
            f"training on {target.label} received SIGTERM while the pod kept running",
            ended.checkpoint,
        )
    e = interrupted(target.pod_id, seen.state, seen.detail)
    return Interrupted(e.kind, e.message, ended.checkpoint)


__all__ = ["AttemptOutcome", "POD_HINT", "follow_attempt"]
