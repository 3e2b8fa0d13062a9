"""What `runner train` prints: training log lines on stdout, its own messages on stderr.

LogView keeps the printed log exact across attempts: it remembers the byte offset just after the
last line printed, so a relaunch first prints the interrupted attempt's unread tail (up to the new
attempt's header), and re-following a region already printed skips it.
"""
from __future__ import annotations

import sys
from typing import Callable

from runner.errors import RunnerError, redact
from runner.remote.shell import Shell
from runner.train.accounting import StepProgress
from runner.train.events import Launched


class Console:
    """Training log lines on stdout; the runner's own messages on stderr, secrets scrubbed."""

    def __init__(self, secrets: tuple[str, ...] = ()):
        self.secrets = secrets

    def say(self, message: str) -> None:
        print(f"[runner] {redact(message, self.secrets)}", file=sys.stderr, flush=True)

    def log_line(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


class LogView:
    """The one continuous log the user sees, across attempts, SSH drops and preemptions."""

    def __init__(self, console: Console, progress: StepProgress):
        self.console = console
        self.progress = progress              # steps seen in the current attempt (accounting)
        self.path: str | None = None          # where the last printed line came from ...
        self.pos: int | None = None           # ... and the offset just after it

    def line(self, text: str, path: str, offset: int) -> None:
        self.console.log_line(text)
        self.path, self.pos = path, offset
        self.progress.feed(text)

    def follow_start(self, launched: Launched, connect: Callable[[], Shell]) -> int:
        """Where to follow this attempt from, printing first what lies between the last line
        printed and the attempt's header (the end of an interrupted attempt); never a line twice."""
        pos = self.pos if self.path == launched.log else None
        if pos is None or launched.log_offset == pos:
            start = launched.log_offset
        elif launched.log_offset > pos:
            self._print_region(connect, launched.log, pos, launched.log_offset)
            start = launched.log_offset
        else:
            # The attempt starts before what we printed: attaching again to it skips what was printed;
            # a new attempt there means the log was truncated meanwhile, so its lines are all new.
            start = pos if launched.attached else launched.log_offset
        # Printed up to here, even before the first line arrives: a preemption may come first.
        self.path, self.pos = launched.log, start
        return start

    def _print_region(self, connect: Callable[[], Shell], path: str, start: int, end: int) -> None:
        try:
            with connect() as conn:
                data = (conn.read_file(path, offset=start) or b"")[:end - start]
        except RunnerError as e:
            self.console.say(f"could not read the end of the previous attempt ({e.message}); it is in {path}, "
                             f"bytes {start}-{end}")
            return
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for line in lines:
            text = line.decode("utf-8", "replace")
            self.console.log_line(text)
            self.progress.feed(text, live=False)       # read late: its time is not now
        self.path, self.pos = path, end


__all__ = ["Console", "LogView"]
