"""`runner logs [-f] [-n N]`: the end of /workspace/logs/current.log, optionally followed live.

Does not start the pod. With -f the log is followed across SSH drops (runner/remote/follow.py: no line
twice, none missing) until Ctrl-C, or until the pod stops (e.g. it stopped itself after training).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable

from remote.podside.contract import VolumePaths
from runner.errors import PodLeft, PodNotRunning, RunnerError
from runner.output import as_invoked
from runner.pod.link import PodLink, open_pod_link
from runner.pod.stack import read_outputs_for
from runner.remote.follow import follow_with_reconnect
from runner.remote.inspect import tail_log
from runner.remote.ssh import SshConnection
from runner.settings import Settings
from runner.types import Say

LineSink = Callable[[bytes], None]


class PodStoppedWhileFollowing(RunnerError):
    """The pod is no longer running, so there is nothing more to follow (not a failure)."""

    exit_code = 0


def _say(message: str) -> None:
    print(as_invoked(message), file=sys.stderr, flush=True)


def _stdout_sink(line: bytes) -> None:
    out = sys.stdout
    out.flush()
    out.buffer.write(line + b"\n")
    out.buffer.flush()


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
            raise _stopped(link, e.pod, e.state) from None

    def on_disconnect(error: Exception, attempt: int) -> None:
        if attempt == 1:
            say(f"[runner] connection lost ({error}); reconnecting...")
        state, pod = link.refresh()
        if not state.up:
            raise _stopped(link, pod, state)

    def on_reconnect(conn: SshConnection, at: int) -> None:
        say(f"[runner] reconnected to {conn.target}")

    return follow_with_reconnect(
        connect,
        path,
        offset,
        lambda line, _off: on_line(line),
        should_stop=lambda: False,
        stop_event=stop_event,
        on_disconnect=on_disconnect,
        on_reconnect=on_reconnect,
        max_reconnect_wait_s=max_reconnect_wait_s,
    )


def _stopped(link: PodLink, pod, state: str) -> PodStoppedWhileFollowing:
    shown = f"{pod.status}: {pod.last_status_change}" if pod is not None and pod.last_status_change else state
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
        from runner.volume.config import why_not

        raise PodNotRunning(
            f"{e.message.split(';')[0]}; the log is on the network volume and readable only while the pod "
            f"runs, or through RunPod's S3 API with the pod stopped ({why_not(settings, outputs)}). "
            "`python -m runner status` shows the last known run; `python -m runner train` resumes it."
        ) from None
    path = VolumePaths(link.outputs.workspace).log
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
