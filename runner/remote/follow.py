"""Follow the remote training log across SSH drops, resuming from the last whole-line byte offset.

Every line is delivered exactly once and in order: the offset only advances past lines already
handed to on_line, a partial line is never delivered, and after a reconnect the remote `tail`
starts exactly at that offset.

    offset = follow_with_reconnect(
        connect=lambda: SshConnection.open(target_now(), host_key_check=...),
        path="/workspace/logs/current.log", offset=result.log_offset,
        on_line=lambda line, off: sys.stdout.buffer.write(line + b"\\n"),
        should_stop=training_finished,          # polled; True -> read what is left, return
        stop_event=detach,                      # set from another thread -> return at once
        on_disconnect=ask_api_if_preempted,     # may raise to abort (e.g. the pod was preempted)
    )
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from backends.polling import Backoff
from runner.errors import RETRYABLE_SSH, SshDisconnected
from runner.remote.shell import Shell

log = logging.getLogger(__name__)

# The kind of connection connect() returns (an SshConnection, or a LocalShell): on_reconnect gets the same one.
Conn = TypeVar("Conn", bound=Shell)

# Worth another try: the link or the pod's sshd is (still) away. Anything else (HostKeyMismatch,
# SshAuthError, SshKeyError, RemoteFileShrunk, errors from on_line or from the caller's connect)
# propagates at once. runner.remote.ssh turns socket/paramiko failures into these types.
RETRYABLE = RETRYABLE_SSH
POD_HINT = (
    "Training keeps running on the pod; check `python -m runner status`, then reattach with "
    "`python -m runner logs --follow`."
)


def follow_with_reconnect(
    connect: Callable[[], Conn],
    path: str,
    offset: int,
    on_line: Callable[[bytes, int], None],
    *,
    should_stop: Callable[[], bool],
    stop_event: threading.Event | None = None,
    on_disconnect: Callable[[Exception, int], None] | None = None,
    on_reconnect: Callable[[Conn, int], None] | None = None,
    max_reconnect_wait_s: float = 600.0,
    initial_backoff_s: float = 0.5,
    max_backoff_s: float = 10.0,
    stop_check_interval_s: float = 1.0,
    liveness_probe_s: float = 20.0,
    liveness_timeout_s: float = 15.0,
    gave_up_hint: str = POD_HINT,
    on_partial: Callable[[bytes], None] | None = None,
) -> int:
    """Deliver the lines of remote `path` from byte `offset` on; return the offset after the last one.

    connect(): opens a fresh connection (called again after every drop, so it can look up the pod's
        current endpoint); this function owns and closes what it returns.
    on_line(line, next_offset): a whole line without its newline, and the offset just after it.
    should_stop(): polled at most every stop_check_interval_s while following. Once it returns
        True, the lines already in the file are read to the end (drain) and the final offset is
        returned: use it for "training finished".
    stop_event: set it from another thread (Ctrl-C detach) to return promptly without draining.
    on_disconnect(error, attempt): called when the link drops (attempt 1) and after each failed
        reconnect (2, 3, ...) before waiting; raise from it to abort (e.g. the API says preempted).
    on_reconnect(conn, offset): called after each successful reconnect.
    on_partial(data): the unfinished last line so far, each time it grew (for showing a progress
        bar live); after a reconnect it starts again from that line's beginning. Never counted in
        the offsets.
    liveness_probe_s / liveness_timeout_s: a link that stays silent that long is asked for a
        round trip; no answer counts as a drop (a vanished pod host sends no TCP reset).
    Gives up with SshDisconnected when no reconnect succeeded for max_reconnect_wait_s seconds; its
    message ends with gave_up_hint (how to come back; the default is for the stack's pod).
    """
    stop_event = stop_event or threading.Event()
    position = int(offset)
    stopping = False
    last_check = 0.0

    def stop_requested() -> bool:
        nonlocal stopping, last_check
        if stop_event.is_set():
            return True
        now = time.monotonic()
        if not stopping and now - last_check >= stop_check_interval_s:
            last_check = now
            stopping = bool(should_stop())
        return stopping

    conn: Conn | None
    conn = connect()  # assigned apart from the declaration so the checker knows it is not None yet
    try:
        while True:
            try:
                if not stopping and not stop_event.is_set():
                    for line, next_offset in conn.follow(
                        path,
                        position,
                        should_stop=stop_requested,
                        liveness_probe_s=liveness_probe_s,
                        liveness_timeout_s=liveness_timeout_s,
                        **({"on_partial": on_partial} if on_partial is not None else {}),
                    ):
                        on_line(line, next_offset)
                        position = next_offset
                if stop_event.is_set():
                    return position
                position = _drain(conn, path, position, on_line)
                return position
            except RETRYABLE as error:
                conn.close()
                conn = None
                conn = _reconnect(
                    connect,
                    error,
                    stop_event,
                    on_disconnect,
                    max_reconnect_wait_s,
                    initial_backoff_s,
                    max_backoff_s,
                    gave_up_hint,
                )
                if conn is None:  # detached while reconnecting
                    return position
                if on_reconnect is not None:
                    on_reconnect(conn, position)
    finally:
        if conn is not None:
            conn.close()


def _drain(conn: Shell, path: str, position: int, on_line: Callable[[bytes, int], None]) -> int:
    """Deliver the whole lines between position and the file's current end."""
    data = conn.read_file(path, offset=position) or b""
    *lines, _partial = data.split(b"\n")
    for line in lines:
        position += len(line) + 1
        on_line(line, position)
    return position


def _reconnect(
    connect: Callable[[], Conn],
    error: Exception,
    stop_event: threading.Event,
    on_disconnect: Callable[[Exception, int], None] | None,
    max_wait_s: float,
    initial_backoff_s: float,
    max_backoff_s: float,
    gave_up_hint: str = POD_HINT,
) -> Conn | None:
    """A new connection, None if stop_event was set meanwhile; SshDisconnected after max_wait_s."""
    backoff = Backoff(max_wait_s, first_s=initial_backoff_s, factor=2.0, cap_s=max_backoff_s, sleep=stop_event.wait)
    attempt = 1
    while True:
        log.info("SSH link lost (%s); reconnecting (attempt %d)", error, attempt)
        if on_disconnect is not None:
            on_disconnect(error, attempt)
        if not backoff.wait():
            raise SshDisconnected(
                f"lost the SSH connection and could not reconnect for {max_wait_s:g}s (last error: {error}). "
                + gave_up_hint
            )
        if stop_event.is_set():
            return None
        attempt += 1
        try:
            return connect()
        except RETRYABLE as e:
            error = e
