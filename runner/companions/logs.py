"""`runner logs [-f] [-n N]`: the end of /workspace/logs/current.log, optionally followed live.

Does not start the pod. With -f the log is followed across SSH drops (runner/remote/follow.py: no line
twice, none missing) until Ctrl-C, or until the pod stops (e.g. it stopped itself after training).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

from runner.errors import PodLeft, PodNotRunning, RunnerError
from runner.output import plain as _say
from runner.pod.link import PodLink, open_pod_link
from runner.pod.stack import read_outputs_for
from runner.remote.follow import FollowEnd, FollowEvents, FollowPolicy, follow_with_reconnect, gave_up
from runner.remote.pod_view import tail_log
from runner.remote.ssh import SshConnection
from runner.settings import Settings
from runner.termtext import print_log_line
from runner.types import Say

LineSink = Callable[[bytes], None]
POD_HINT = (
    "Training keeps running on the pod; check `python -m runner status`, then reattach with "
    "`python -m runner logs --follow`."
)


class PodStoppedWhileFollowing(RunnerError):
    """The pod is no longer running, so there is nothing more to follow (not a failure)."""

    exit_code = 0


def _stdout_sink(line: bytes) -> None:
    print_log_line(line)


class _LogEvents(FollowEvents[SshConnection]):
    def __init__(self, link: PodLink, on_line: LineSink, say: Say):
        self.link, self.on_line, self.say = link, on_line, say
        self.left: str | None = None  # how the pod was seen not running (following ends)

    def line(self, line: bytes, offset: int) -> None:
        self.on_line(line)

    def dropped(self, error: Exception, attempt: int) -> bool:
        if attempt == 1:
            self.say(f"[runner] connection lost ({error}); reconnecting...")
        seen = self.link.refresh()
        if seen.state.up:
            return False
        self.left = f"{seen.pod.status}: {seen.detail}" if seen.pod is not None and seen.detail else str(seen.state)
        return True

    def reconnected(self, conn: SshConnection, offset: int) -> None:
        self.say(f"[runner] reconnected to {conn.target}; following from byte {offset}")


def follow_log(
    link: PodLink,
    path: str,
    offset: int,
    on_line: LineSink,
    *,
    stop_event: threading.Event | None = None,
    first_connection: SshConnection | None = None,
    say: Say = _say,
    max_reconnect_wait_s: float = 600.0,
) -> int:
    """Print the lines of `path` from byte `offset` on until stop_event is set; returns the final offset.

    Each (re)connect asks the API where the pod's SSH is now. Raises PodStoppedWhileFollowing when
    the pod stops or disappears (then the log cannot grow any more)."""
    pending = [first_connection] if first_connection is not None else []

    def connect() -> SshConnection:
        if pending:
            return pending.pop()
        try:
            return link.reconnect()
        except PodLeft as e:
            raise _stopped(link, e.shown) from None

    events = _LogEvents(link, on_line, say)
    policy = FollowPolicy(max_reconnect_wait_s=max_reconnect_wait_s)
    followed = follow_with_reconnect(connect, path, offset, events, stop_event=stop_event, policy=policy)
    if followed.end == FollowEnd.ABANDONED:
        raise _stopped(link, events.left or "not running")
    if followed.end == FollowEnd.GAVE_UP:
        raise gave_up(followed, policy, hint=POD_HINT)
    return followed.offset


def _stopped(link: PodLink, shown: str) -> PodStoppedWhileFollowing:
    return PodStoppedWhileFollowing(
        f"pod {link.pod_id} is no longer running ({shown}); the log ends here. "
        "`python -m runner status` shows how the run ended."
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    lines = int(getattr(args, "lines", 100))
    follow = bool(getattr(args, "follow", False))
    settings.preflight()
    outputs = read_outputs_for(settings)
    try:
        link = open_pod_link(settings, start_if_stopped=False, outputs=outputs)
    except PodNotRunning as e:
        from runner.volume.views import print_log  # the volume through S3 (no pod)

        code = print_log(settings, outputs, lines, follow)
        if code is not None:
            return code
        from runner.volume.s3_config import why_not

        raise PodNotRunning(
            e.summary,
            hint="The log is on the network volume and readable only while the pod runs, or through RunPod's S3 "
            f"API with the pod stopped ({why_not(settings, outputs)}). `python -m runner status` shows the last "
            "known run; `python -m runner train` resumes it.",
        ) from None
    path = link.outputs.volume_paths.log
    conn: SshConnection | None
    conn = link.connect()
    try:
        tail = tail_log(conn, path, lines)
        if tail is None:
            _say(f"no training log on the pod yet ({path})" + ("; waiting for it..." if follow else "."))
            offset = 0
        else:
            for line in tail.lines:
                _stdout_sink(line)
            offset = tail.end_offset
        if not follow:
            return 0
        first, conn = conn, None
        follow_log(link, path, offset, _stdout_sink, first_connection=first)
        return 0
    except PodStoppedWhileFollowing as e:
        _say(f"[runner] {e.message}")
        return 0
    except KeyboardInterrupt:
        _say("\n[runner] stopped following; training on the pod is not affected.")
        return 0
    finally:
        if conn is not None:
            conn.close()
