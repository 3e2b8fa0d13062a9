"""Follow the remote training log across SSH drops, resuming from the last whole-line byte offset.

Every line is delivered exactly once and in order: the offset only advances past lines already handed
to the caller, a partial line is never delivered as a line, and after a reconnect the remote `tail`
starts exactly at that offset.

    followed = follow_with_reconnect(connect, "/workspace/logs/current.log", offset, events)

`events` (a FollowEvents) gets each line and is asked whether to stop; what happened comes back as a
value, never as an exception thrown through it:
    FINISHED   events.should_stop() said so; the lines already in the file were read to the end
    DETACHED   stop_event was set (Ctrl-C detach from another thread)
    ABANDONED  events.dropped() said to stop following after a drop (e.g. the pod is gone)
    GAVE_UP    no reconnect succeeded for policy.max_reconnect_wait_s (followed.error: the last error)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from backends.polling import Backoff
from runner.errors import RETRYABLE_SSH, SshDisconnected
from runner.remote.shell import READ_LIMIT, LineBuffer, Shell
from runner.types import StrEnum

log = logging.getLogger(__name__)

# The kind of connection connect() returns (an SshConnection, or a LocalShell): reconnected() gets the same one.
Conn = TypeVar("Conn", bound=Shell)

# Worth another try: the link or the pod's sshd is (still) away. Anything else (HostKeyMismatch,
# SshAuthError, SshKeyError, RemoteFileShrunk, errors from the events or from the caller's connect)
# propagates at once. runner.remote.ssh turns socket/paramiko failures into these types.
RETRYABLE = RETRYABLE_SSH


class FollowEnd(StrEnum):
    FINISHED = "finished"
    DETACHED = "detached"
    ABANDONED = "abandoned"
    GAVE_UP = "gave_up"


@dataclass(frozen=True)
class Followed:
    offset: int  # just after the last line delivered
    end: FollowEnd
    error: Exception | None = None  # GAVE_UP: the last link error


@dataclass(frozen=True)
class FollowPolicy:
    max_reconnect_wait_s: float = 600.0
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    stop_check_interval_s: float = 1.0  # how often should_stop() is asked while following
    # A link that stays silent this long is asked for a round trip; no answer counts as a drop (a vanished
    # pod host sends no TCP reset).
    liveness_probe_s: float = 20.0
    liveness_timeout_s: float = 15.0


class FollowEvents(Generic[Conn]):
    """What the follower tells its caller and asks it. Override what you need."""

    shows_partial = False  # True: partial() gets the unfinished last line as it grows (a live progress bar)

    def line(self, line: bytes, offset: int) -> None:
        """A whole line without its newline, and the offset just after it."""

    def partial(self, data: bytes) -> None:
        """The unfinished last line so far; after a reconnect it starts again from that line's beginning."""

    def should_stop(self) -> bool:
        """Polled while following: True once the end is known (then the file is read to its end)."""
        return False

    def dropped(self, error: Exception, attempt: int) -> bool:
        """The link dropped (attempt 1) or a reconnect failed (2, 3, ...): True to stop following."""
        return False

    def reconnected(self, conn: Conn, offset: int) -> None:
        """A new connection follows from `offset`."""


def follow_with_reconnect(
    connect: Callable[[], Conn],
    path: str,
    offset: int,
    events: FollowEvents[Conn],
    *,
    stop_event: threading.Event | None = None,
    policy: FollowPolicy = FollowPolicy(),
    keep: Callable[[Conn], None] | None = None,
) -> Followed:
    """Deliver the lines of remote `path` from byte `offset` on (see the module docstring).

    connect() opens a fresh connection (called again after every drop, so it can look up the pod's
    current endpoint); this function owns and closes what it returns, except that the connection of a
    follow that FINISHED goes to keep() when given (the caller's next use skips a handshake)."""
    stop_event = stop_event or threading.Event()
    position = int(offset)
    stopping = False
    last_check = 0.0

    def stop_requested() -> bool:
        nonlocal stopping, last_check
        if stop_event.is_set():
            return True
        now = time.monotonic()
        if not stopping and now - last_check >= policy.stop_check_interval_s:
            last_check = now
            stopping = bool(events.should_stop())
        return stopping

    partial = {"on_partial": events.partial} if events.shows_partial else {}
    conn: Conn | None
    conn = connect()  # assigned apart from the declaration so the checker knows it is not None yet
    healthy = False  # the follow FINISHED on this connection: keep() may have it
    try:
        while True:
            try:
                if not stopping and not stop_event.is_set():
                    for line, next_offset in conn.follow(
                        path,
                        position,
                        should_stop=stop_requested,
                        liveness_probe_s=policy.liveness_probe_s,
                        liveness_timeout_s=policy.liveness_timeout_s,
                        **partial,
                    ):
                        events.line(line, next_offset)
                        position = next_offset
                if stop_event.is_set():
                    return Followed(position, FollowEnd.DETACHED)
                finished = Followed(_drain(conn, path, position, events), FollowEnd.FINISHED)
                healthy = True
                return finished
            except RETRYABLE as error:
                conn.close()
                conn = None
                outcome = _reconnect(connect, error, stop_event, events, policy)
                if isinstance(outcome, Followed):
                    return Followed(position, outcome.end, outcome.error)
                conn = outcome
                events.reconnected(conn, position)
    finally:
        if conn is not None and healthy and keep is not None:
            keep(conn)
        elif conn is not None:
            conn.close()


def _drain(conn: Shell, path: str, position: int, events: FollowEvents) -> int:
    """Deliver the whole lines between position and the file's current end (read in bounded pieces)."""
    while True:
        data = conn.read_file(path, offset=position, limit=READ_LIMIT) or b""
        lines = LineBuffer(position)
        for line, after in lines.feed(data):
            events.line(line, after)
        if lines.position == position or len(data) < READ_LIMIT:
            return lines.position
        position = lines.position


def _reconnect(
    connect: Callable[[], Conn],
    error: Exception,
    stop_event: threading.Event,
    events: FollowEvents[Conn],
    policy: FollowPolicy,
) -> Conn | Followed:
    """A new connection, or how following ends instead (the offset of the Followed is the caller's)."""
    backoff = Backoff(
        policy.max_reconnect_wait_s,
        first_s=policy.initial_backoff_s,
        factor=2.0,
        cap_s=policy.max_backoff_s,
        sleep=stop_event.wait,
    )
    attempt = 1
    while True:
        log.info("SSH link lost (%s); reconnecting (attempt %d)", error, attempt)
        if events.dropped(error, attempt):
            return Followed(0, FollowEnd.ABANDONED, error)
        if not backoff.wait():
            return Followed(0, FollowEnd.GAVE_UP, error)
        if stop_event.is_set():
            return Followed(0, FollowEnd.DETACHED)
        attempt += 1
        try:
            return connect()
        except RETRYABLE as e:
            error = e


def gave_up(followed: Followed, policy: FollowPolicy, *, hint: str) -> SshDisconnected:
    """The error for a follow that GAVE_UP: what was lost, and how to come back (`hint`)."""
    return SshDisconnected(
        f"lost the SSH connection and could not reconnect for {policy.max_reconnect_wait_s:g}s "
        f"(last error: {followed.error})",
        hint=hint,
    )


__all__ = ["FollowEnd", "FollowEvents", "FollowPolicy", "Followed", "follow_with_reconnect", "gave_up"]
