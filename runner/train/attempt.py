"""Follow one attempt from its log offset until it ends, is interrupted, or the user detaches.

Lines come from runner/remote/follow.py (whole lines, across SSH drops, no line twice). The end is
seen in the log (endwatch.py); on the stack's pod a PodWatch asks the API every few seconds, and
every SSH drop asks it too (the target's after_disconnect), so a preemption is noticed at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from backends.polling import Backoff
from runner import timeouts
from runner.errors import RETRYABLE_SSH
from runner.remote.follow import POD_HINT, follow_with_reconnect
from runner.remote.shell import Shell
from runner.train.console import LogView
from runner.train.endwatch import EndWatch
from runner.train.events import Detached, Ended, Interrupted, Launched, StopCause, TargetInterrupted
from runner.train.targets.base import Target, interruption
from runner.train.watch import PodWatch, confirm_interruption
from runner.types import Say, TargetKind


@dataclass(frozen=True)
class AttemptOutcome:
    result: Ended | Interrupted | Detached
    detected_at: float  # when an interruption was noticed (now, otherwise)


def follow_attempt(
    target: Target,
    launched: Launched,
    start: int,
    view: LogView,
    *,
    say: Say,
    extra_check: Callable[[], None] | None = None,
) -> AttemptOutcome:
    t = timeouts.current()
    watch = EndWatch(
        launched.run_id, launched.attempt, launched.state_file, grace_s=t.end_grace_s, poll_s=t.state_poll_s
    )
    watch.extra_check = extra_check
    current: dict[str, Shell | None] = {"conn": None}
    stop_event = threading.Event()
    pod_watch: PodWatch | None = None
    if target.kind == TargetKind.POD:
        pod_watch = PodWatch(target.observe, t.pod_poll_s, stop_event.set).start()
    first = {"pending": True}

    def connect() -> Shell:
        current["conn"] = None
        conn = first_connect() if first.pop("pending", False) else target.connect()
        current["conn"] = conn
        return conn

    def first_connect() -> Shell:
        """follow_with_reconnect retries only once a first link was up; a link that drops while it
        is being opened (a preemption right after the launch) gets the same treatment here."""
        backoff = Backoff(
            t.max_reconnect_wait_s, first_s=0.5, factor=2.0, cap_s=5.0, sleep=stop_event.wait
        )  # the pod watch's verdict ends a pause early
        attempt = 0
        while True:
            try:
                return target.connect()
            except RETRYABLE_SSH as error:
                attempt += 1
                if backoff.remaining <= 0:
                    raise
                on_disconnect(error, attempt)  # raises TargetInterrupted when the pod stopped
                backoff.wait()

    def on_line(line: bytes, offset: int) -> None:
        text = line.decode("utf-8", "replace")
        view.line(text, launched.log, offset)
        watch.feed(text)

    def on_disconnect(error: Exception, attempt: int) -> None:
        current["conn"] = None
        if pod_watch is not None and pod_watch.verdict is not None:
            raise interruption(target.pod_id, *pod_watch.verdict)
        if attempt == 1:
            say(
                f"SSH link lost ({str(error) or type(error).__name__}); reconnecting, the log continues where "
                "it stopped"
            )
        target.after_disconnect(error, attempt, say)

    def on_reconnect(_conn: Shell, offset: int) -> None:
        say(f"reconnected; following the log from byte {offset}")

    stopped: TargetInterrupted | None = None
    try:
        follow_with_reconnect(
            connect,
            launched.log,
            start,
            on_line,
            should_stop=lambda: watch.should_stop(current["conn"]),
            stop_event=stop_event,
            on_disconnect=on_disconnect,
            on_reconnect=on_reconnect,
            max_reconnect_wait_s=t.max_reconnect_wait_s,
            stop_check_interval_s=t.stop_check_interval_s,
            gave_up_hint=POD_HINT if target.kind == TargetKind.POD else _gave_up_hint(target),
            on_partial=view.partial,
        )
    except TargetInterrupted as e:
        stopped = e
    except KeyboardInterrupt:
        return AttemptOutcome(Detached(), time.time())
    finally:
        if pod_watch is not None:
            pod_watch.stop()
    if pod_watch is not None and pod_watch.verdict is not None and watch.footer is None and stopped is None:
        stopped = interruption(target.pod_id, *pod_watch.verdict)
    detected_at = (pod_watch.detected_at if pod_watch is not None else None) or time.time()
    if stopped is not None:
        if stopped.kind != StopCause.BUDGET and watch.note is not None and not watch.note.preempted:
            # The pod stopped itself after training ended, before we read the end (no ack).
            return AttemptOutcome(watch.note, detected_at)
        end = watch.footer or watch.note
        return AttemptOutcome(Interrupted(stopped.kind, stopped.message, end.checkpoint if end else None), detected_at)
    ended = watch.ended or Ended("unknown", None, None, "state")
    if ended.preempted:
        return AttemptOutcome(_sigterm(target, ended, say), detected_at)
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
    e = interruption(target.pod_id, *seen)
    return Interrupted(e.kind, e.message, ended.checkpoint)


__all__ = ["AttemptOutcome", "follow_attempt"]
