"""The attempt log, <workspace>/logs/current.log: appended to, never truncated.

Training writes into it directly (its stdout and stderr); the launcher adds the header, the footer
and `[remote_train] ...` notes. Those always start on a line of their own: when the log does not end
in a newline (a progress bar redrawn with \\r, a line cut off by a kill), a "\\n" goes first. Each
launcher line is one write(2) on an O_APPEND descriptor, so it is never interleaved with training's.
"""

from __future__ import annotations

import os
from typing import Optional

from .loglines import NOTE_PREFIX


def ends_mid_line(path: str) -> bool:
    """True when the file is non-empty and its last byte is not a newline."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:
        return False


def append_line(path: str, text: str) -> None:
    """Append `text` as one whole line (a newline first if the log ends mid-line)."""
    data = text.rstrip("\n").encode("utf-8", "replace") + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if ends_mid_line(path):
            data = b"\n" + data
        os.write(fd, data)
    finally:
        os.close(fd)


def start_line(path: str) -> int:
    """Make sure the next write starts a line; returns the log's size then (where an attempt begins)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if ends_mid_line(path):
            os.write(fd, b"\n")
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def say(text: str) -> None:
    """A line on the supervisor's tmux pane (stderr). The pane may be gone (tmux kill-session)."""
    try:
        os.write(2, (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


class Log:
    def __init__(self, path: str, *, pane: bool = False):
        self.path = path
        self.pane = pane

    def line(self, text: str) -> None:
        append_line(self.path, text)

    def note(self, text: str, *, pane: Optional[bool] = None) -> None:
        """`[remote_train] <text>` in the log (and on the pane, for the supervisor)."""
        line = NOTE_PREFIX + text
        try:
            append_line(self.path, line)
        except OSError as exc:
            say(f"{NOTE_PREFIX}(could not write the log {self.path}: {exc.strerror}) {text}")
        if self.pane if pane is None else pane:
            say(line)

    def size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0
