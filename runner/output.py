"""How the runner's own lines look: colour and a dim `[runner]` prefix on a terminal (never when
NO_COLOR is set, TERM is dumb or the stream is a file or a pipe), real plurals, quiet mode, and the
one line redrawn with its elapsed time while the runner waits.

Only the runner's own words are styled here. Text that comes from the pod is data: whatever cleans it
for the terminal sits in front of these functions, which add escape sequences only around it.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import TextIO

STYLES = {"dim": "2", "bold": "1", "green": "32", "yellow": "33", "red": "1;31"}
STATUS_STYLE = {"ok": "green", "warn": "yellow", "FAIL": "red", "skip": "dim"}  # runner doctor's words
PREFIX = "[runner]"
CLEAR_LINE = "\r\x1b[K"  # back to the line's start, erase it
TICK_S = 1.0

quiet = False  # -q: the waits and the start-up's progress lines are not shown (cli.main sets it)
command = "python -m runner"  # how the user invoked the runner (cli.main sets it): the hints name it
_MODULE = re.compile(r"python -m runner(\.livecheck)?(?![.\w])")


def as_invoked(text: str) -> str:
    """The runner's hints say `python -m runner …`; shown as the user runs it (`runpod-trainer …`, which
    is all a pipx install has)."""
    if command == "python -m runner":
        return text
    return _MODULE.sub(lambda m: f"{command} livecheck" if m.group(1) else command, text)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour_on(stream: TextIO) -> bool:
    """https://no-color.org: NO_COLOR set to anything but empty turns colour off."""
    return is_terminal(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, style: str, stream: TextIO) -> str:
    return f"\x1b[{STYLES[style]}m{text}\x1b[0m" if colour_on(stream) else text


def status_word(word: str, stream: TextIO, width: int = 0) -> str:
    """ok / warn / FAIL / skip, padded to `width`, in its colour on a terminal."""
    style = STATUS_STYLE.get(word)
    padded = word.ljust(width)
    return paint(word, style, stream) + padded[len(word) :] if style else padded


def plural(n: int | float, word: str, many: str | None = None) -> str:
    """`1 step`, `2 steps`, `1 recovery`, `3 recoveries`."""
    if n == 1:
        return f"{n:g} {word}"
    if many is None:
        many = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    return f"{n:g} {many}"


def duration(seconds: float | None) -> str:
    """`7s`, `3m 05s`, `2h 03m 10s`."""
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


class Waiting(str):
    """A line that describes a wait in progress. Printed once as it is where the output is a file or a
    pipe; on a terminal it stays the bottom line, redrawn every second with the time waited so far,
    until the next line replaces it."""

    since: float
    limit_s: float | None

    def __new__(cls, text: str, *, since: float | None = None, limit_s: float | None = None) -> Waiting:
        line = super().__new__(cls, text)
        line.since = time.monotonic() if since is None else since
        line.limit_s = limit_s
        return line

    def retold(self, text: str) -> Waiting:
        """The same wait with other words (e.g. secrets scrubbed)."""
        return Waiting(text, since=self.since, limit_s=self.limit_s)

    def with_time(self, now: float) -> str:
        limit = f" of at most {duration(self.limit_s)}" if self.limit_s else ""
        return f"{self} ({duration(now - self.since)}{limit})"


def _shown(message: str, stream: TextIO) -> str:
    """A line as written: the command named as invoked, and on a terminal no control sequence from the pod
    that the message may quote (runner/termtext.py)."""
    from runner.termtext import LINES as KEEP
    from runner.termtext import for_stream

    return for_stream(as_invoked(message), stream, KEEP)


class Lines:
    """The runner's own lines on one stream (stderr): prefixed, the current wait redrawn on a terminal."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream
        self._wait: Waiting | None = None
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def prefix(self) -> str:
        return paint(PREFIX, "dim", self.stream)

    def say(self, message: str) -> None:
        with self._lock:
            self._end_wait()
            if isinstance(message, Waiting):
                if quiet:
                    return
                if is_terminal(self.stream):
                    self._wait = message
                    self._draw()
                    self._tick()
                    return
                message = message.with_time(time.monotonic())
            print(f"{self.prefix()} {_shown(message, self.stream)}", file=self.stream, flush=True)

    def clear(self) -> None:
        """Take the wait line off the screen (before something else is written to it)."""
        with self._lock:
            if self._wait is not None:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()

    def redraw(self) -> None:
        with self._lock:
            if self._wait is not None:
                self._draw()

    def _draw(self) -> None:
        assert self._wait is not None
        self.stream.write(f"{CLEAR_LINE}{self.prefix()} {_shown(self._wait.with_time(time.monotonic()), self.stream)}")
        self.stream.flush()

    def _end_wait(self) -> None:
        if self._wait is not None:
            self._wait = None
            self.stream.write(CLEAR_LINE)
            self.stream.flush()

    def _tick(self) -> None:
        if self._ticker is not None and self._ticker.is_alive():
            return

        def run() -> None:
            while True:
                time.sleep(TICK_S)
                with self._lock:
                    if self._wait is None:
                        self._ticker = None
                        return
                    self._draw()

        self._ticker = threading.Thread(target=run, name="runner-wait-line", daemon=True)
        self._ticker.start()


LINES = Lines()  # the process's [runner] lines on stderr


def say(message: str) -> None:
    """A Say (runner/types.py) for the runner's own lines: `[runner] message` on stderr."""
    LINES.say(message)


def plain(message: str, stream: TextIO | None = None) -> None:
    """A message of the runner on stderr (or stream) without the `[runner]` prefix: the command named as
    invoked, cleaned on a terminal (runner/termtext.py)."""
    out = stream or sys.stderr
    print(_shown(message, out), file=out, flush=True)
