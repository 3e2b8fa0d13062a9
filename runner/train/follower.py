"""`runner train` while another runner leads the stack (runner/stacklock.py): follow, never act.

The leader alone starts, recovers and stops the pod. This one prints the run's log from its last lines
on, live, until the attempt's footer (then it exits with training's exit code, as `train` does) or the
pod stops (the leader decides what comes next). It never starts the pod, never stops it, and never
runs `pulumi up`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from backends.polling import Backoff
from remote.podside.contract import parse_footer
from runner.errors import EXIT_POD, RETRYABLE_SSH, PodLeft, PodNotRunning
from runner.settings import Settings
from runner.stacklock import Holder
from runner.termtext import print_log_line
from runner.types import Say

if TYPE_CHECKING:
    from runner.pod.link import PodLink
    from runner.remote.pod_view import LogTail
    from runner.remote.ssh import SshConnection

TAIL_LINES = 20
ATTACH_WAIT_S = 120.0


def follow_leader(settings: Settings, holder: Holder | None, say: Say) -> int:
    from runner.companions.logs import PodStoppedWhileFollowing, follow_log
    from runner.pod.link import open_pod_link

    who = holder.describe() if holder is not None else "another runner"
    say(
        f"{who} leads stack {settings.stack}: it alone starts, recovers and stops the pod. This command "
        "only follows the log (Ctrl-C stops following; nothing on the pod changes)."
    )
    try:
        link = open_pod_link(settings, start_if_stopped=False)
    except PodNotRunning:
        say(
            f"the pod of stack {settings.stack} is not running: nothing to follow now; the leading runner decides what comes next."
        )
        return EXIT_POD
    path = link.outputs.volume_paths.log
    ended: dict[str, int] = {}
    stop = threading.Event()

    def on_line(line: bytes) -> None:
        print_log_line(line)
        footer = parse_footer(line.decode("utf-8", "replace"))
        if footer is not None:
            ended["code"] = footer.exit_code if isinstance(footer.exit_code, int) else 0
            stop.set()

    conn: SshConnection | None
    try:
        conn, tail = _attach(link, path)
    except PodLeft as e:  # stopped as this command attached: as if it had stopped while following
        say(f"[runner] pod {link.pod_id} is no longer running ({e.shown}); the leading runner decides what comes next.")
        return 0
    try:
        for line in tail.lines if tail is not None else []:
            print_log_line(line)
        first, conn = conn, None  # follow_log owns it from here
        follow_log(
            link, path, tail.end_offset if tail else 0, on_line, stop_event=stop, first_connection=first, say=say
        )
    except PodStoppedWhileFollowing as e:
        say(f"[runner] {e.message}")
    except KeyboardInterrupt:
        say("[runner] stopped following; the leading runner and the pod go on.")
        return 0
    finally:
        if conn is not None:
            conn.close()
    return ended.get("code", 0)


def _attach(link: PodLink, path: str) -> tuple[SshConnection, LogTail | None]:
    """The first connection and the log's last lines. A drop right then (the pod preempted as this
    command attaches) is retried as a drop while following is: PodLeft once the pod is seen stopped."""
    from runner.remote.pod_view import tail_log

    backoff = Backoff(ATTACH_WAIT_S, first_s=0.5, factor=2.0, cap_s=5.0)
    connect = link.connect
    while True:
        try:
            conn = connect()
            try:
                return conn, tail_log(conn, path, TAIL_LINES)
            except BaseException:
                conn.close()
                raise
        except RETRYABLE_SSH:
            if not backoff.wait():
                raise
            connect = link.reconnect  # where the pod answers now, or PodLeft


__all__ = ["follow_leader"]
