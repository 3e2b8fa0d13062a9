"""What `runner train` prints: training log lines on stdout, its own messages on stderr.

LogView keeps the printed log exact across attempts: it remembers the byte offset just after the
last line printed, so a relaunch first prints the interrupted attempt's unread tail (up to the new
attempt's header), and re-following a region already printed skips it.

On a terminal, the line training is still writing (a progress bar redrawn with \r) is shown live:
its new bytes go to the terminal as they arrive, which redraws the bar in place, and when its
newline comes the line is kept as the log has it. A runner message meanwhile clears the bar, goes
on its own line and draws the bar again below it. When stdout is a file or a pipe it gets the log's
whole lines only, byte for byte. On a terminal the log and the runner's messages (which quote the
pod) go through runner/termtext.py first, so the pod cannot send the terminal control sequences.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from runner import output, termtext
from runner.errors import RunnerError, redact
from runner.remote.shell import Shell
from runner.train.accounting import StepProgress
from runner.train.events import Launched
from runner.train.losscurve import LossCurve

CLEAR_LINE = output.CLEAR_LINE
_is_terminal = output.is_terminal


def complete_utf8(data: bytes) -> str:
    """data decoded, without a multi-byte character cut off at its end (its rest comes later)."""
    for cut in range(0, 4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


class Console:
    """Training log lines on stdout; the runner's own messages on stderr (runner/output.py), secrets
    scrubbed. With -q the progress lines before the first attempt starts are left out."""

    def __init__(self, secrets: tuple[str, ...] = (), lines: output.Lines | None = None):
        self.secrets = secrets
        self.lines = lines or output.LINES
        self.started = False  # the first attempt's boundary line was printed (-q shows from there on)
        self._shown = ""  # the unfinished log line as far as the terminal shows it
        self._lock = threading.RLock()  # the API poll's thread says things too

    def say(self, message: str) -> None:
        with self._lock:
            if output.quiet and not self.started and not message.lower().startswith("warning"):
                return
            text = redact(message, self.secrets)
            if isinstance(message, output.Waiting):
                text = message.retold(text)
            shared = bool(self._shown) and _is_terminal(sys.stderr)
            if shared:  # the same terminal: the bar makes room, then comes back
                sys.stdout.write(CLEAR_LINE)
                sys.stdout.flush()
            self.lines.say(text)
            if shared:
                sys.stdout.write(self._shown.rsplit("\r", 1)[-1])
                sys.stdout.flush()

    def log_line(self, text: str) -> None:
        text = termtext.for_stream(text, sys.stdout)
        with self._lock:
            self.lines.clear()  # a wait line on the same terminal makes room for the log
            if self._shown:
                shown, self._shown = self._shown, ""
                if text.startswith(shown):
                    text = text[len(shown) :]  # the rest of the line the terminal shows
                else:
                    sys.stdout.write(CLEAR_LINE)  # the log says otherwise: replace it
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            self.lines.redraw()

    def partial(self, data: bytes) -> None:
        """The unfinished last log line so far: on a terminal, show what is new of it."""
        if not termtext.is_terminal(sys.stdout):
            return
        with self._lock:
            text = complete_utf8(data)
            if termtext.guarded(sys.stdout):
                text = termtext.clean(termtext.hold_back(text))
            if text.startswith(self._shown):
                new = text[len(self._shown) :]
            else:
                new = CLEAR_LINE + text
            if new:
                self.lines.clear()
                sys.stdout.write(new)
                sys.stdout.flush()
            self._shown = text

    def end_partial(self) -> None:
        """Leave the unfinished line where it is (the runner stops following): a newline after it."""
        with self._lock:
            if self._shown:
                self._shown = ""
                sys.stdout.write("\n")
                sys.stdout.flush()


class LogView:
    """The one continuous log the user sees, across attempts, SSH drops and preemptions."""

    def __init__(self, console: Console, progress: StepProgress, loss: LossCurve | None = None):
        self.console = console
        self.progress = progress  # steps seen in the current attempt (accounting)
        self.loss = loss if loss is not None else LossCurve()  # the run's loss over steps (the chart)
        self.path: str | None = None  # where the last printed line came from ...
        self.pos: int | None = None  # ... and the offset just after it

    def line(self, text: str, path: str, offset: int) -> None:
        self.console.log_line(text)
        self.path, self.pos = path, offset
        self.progress.feed(text)
        self.loss.feed(text)

    def partial(self, data: bytes) -> None:
        """The line training is still writing (not counted in pos: it is printed again once whole)."""
        self.console.partial(data)

    def follow_start(self, launched: Launched, connect: Callable[[], AbstractContextManager[Shell]]) -> int:
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

    def _print_region(
        self, connect: Callable[[], AbstractContextManager[Shell]], path: str, start: int, end: int
    ) -> None:
        try:
            with connect() as conn:
                data = conn.read_file(path, offset=start, limit=end - start) or b""
        except RunnerError as e:
            self.console.say(
                f"could not read the end of the previous attempt ({e.message}); it is in {path}, bytes {start}-{end}"
            )
            return
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for line in lines:
            text = line.decode("utf-8", "replace")
            self.console.log_line(text)
            self.progress.feed(text, live=False)  # read late: its time is not now
            self.loss.feed(text)
        self.path, self.pos = path, end


__all__ = ["Console", "LogView"]
