"""What every way of running things on the training machine shares: the `Shell` protocol.

`SshConnection` (runner/remote/ssh.py, the pod or a --host machine) and `LocalShell`
(runner/remote/local.py, --local) both satisfy `Shell`, so runner/train/ has one code path. This
module also holds the pieces both use: RunResult, the bytes a launcher script is streamed as, and
the splitting of a byte stream into whole lines with their offsets.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

# What the runner takes from the pod at once: the pod decides what its files and commands hold, so every
# read is bounded. A file (state.json, a config, a region of the log) is read up to READ_LIMIT bytes;
# a command's output beyond OUTPUT_LIMIT ends it with an error; a log line longer than LINE_LIMIT is
# delivered in LINE_LIMIT pieces (as if it had line breaks there) instead of held in memory whole.
READ_LIMIT = 16 * 1024 * 1024
OUTPUT_LIMIT = 64 * 1024 * 1024
LINE_LIMIT = 1024 * 1024

LineCallback = Callable[[str], None]
# The unfinished last line so far (everything after the last newline, e.g. a progress bar redrawn
# with \r). Only for showing it: offsets, and so resuming, stay at whole lines.
PartialCallback = Callable[[bytes], None]
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class RunResult:
    """Outcome of a remote command. stdout/stderr are decoded UTF-8 (invalid bytes replaced).

    exit_code is -1 when the command ended without an exit status (killed by a signal).
    """

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Shell(Protocol):
    """What runner/train/ uses of a connection to the machine that trains."""

    @property
    def target(self) -> object:
        """What the connection reaches (an SshTarget, or a description of this machine)."""
        ...

    def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_stdout_line: LineCallback | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> RunResult: ...

    def run_script(
        self,
        script_text: str,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,
        on_stdout_line: LineCallback | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> RunResult: ...

    def read_file(self, path: str, *, offset: int = 0, limit: int = READ_LIMIT) -> bytes | None:
        """At most `limit` bytes of the file from `offset` on; None when it does not exist."""
        ...

    def write_file(self, path: str, data: bytes, *, mode: int = 0o644) -> None: ...

    def follow(
        self,
        path: str,
        offset: int = 0,
        *,
        should_stop: Callable[[], bool] | None = None,
        liveness_probe_s: float = 20.0,
        liveness_timeout_s: float = 15.0,
        on_partial: PartialCallback | None = None,
    ) -> Iterator[tuple[bytes, int]]: ...

    def check_alive(self, timeout: float = 10.0) -> None: ...

    @property
    def is_active(self) -> bool: ...

    def close(self) -> None: ...

    def __enter__(self) -> Shell: ...

    def __exit__(self, *exc: object) -> None: ...


# What `run_script` runs, with build_script()'s bytes on stdin: bash reads the whole stream with one
# `cat` (in blocks) and parses it from memory. `bash -s` would read a script from a pipe one byte per
# read() (it must not consume input meant for the commands it runs): ~35 ms for the launcher's ~200 kB,
# on every launch. Fixed text, no value on the command line; the exports and the group below behave
# as under `bash -s` (and nothing is left on stdin for a command to swallow).
SCRIPT_COMMAND = "bash -c 'eval \"$(cat)\"'"


def build_script(script_text: str, env: Mapping[str, str]) -> bytes:
    """The exact bytes `run_script` sends to SCRIPT_COMMAND: quoted exports, then the script.

    The script runs inside `{ ...; } </dev/null`: bash parses the whole group before running it,
    so a command in the script that reads stdin (git, ssh, pip, read) cannot swallow the rest of
    the script, and gets EOF instead. (Caveat: `shopt -s extglob` inside the script then comes too
    late for patterns in the same script.)
    """
    lines = []
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name {name!r}: use letters, digits and _ only")
        if not isinstance(value, str):
            raise TypeError(f"environment variable {name} must be a str, got {type(value).__name__}")
        if "\0" in value:
            raise ValueError(f"environment variable {name} contains a NUL byte, which a shell cannot hold")
        lines.append(f"export {name}={shlex.quote(value)}")
    body = script_text if script_text.endswith("\n") else script_text + "\n"
    return ("\n".join(lines) + "\n{\n" + body + "} </dev/null\n").encode()


class LineBuffer:
    """Bytes in, whole lines out, each with the byte offset just after it (where to resume).

    A partial last line is held back until its newline arrives (`pending` shows it so far; the
    offsets never count it). Used for following the log (SSH and local alike) and for a command's
    stdout/stderr line callbacks. A line that grows past `limit` bytes without a newline is delivered
    in pieces of `limit` bytes (each offset just after its piece): memory stays bounded whatever the
    pod writes."""

    def __init__(self, offset: int = 0, limit: int = LINE_LIMIT):
        self.position = int(offset)
        self.pending = b""
        self.limit = limit

    def feed(self, data: bytes) -> Iterator[tuple[bytes, int]]:
        if b"\n" not in data and len(self.pending) + len(data) <= self.limit:
            self.pending += data  # the common case of a growing progress bar: no split, no copy of lines
            return
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            yield from self._pieces(line)
        while len(self.pending) > self.limit:
            piece, self.pending = self.pending[: self.limit], self.pending[self.limit :]
            self.position += len(piece)
            yield piece, self.position

    def _pieces(self, line: bytes) -> Iterator[tuple[bytes, int]]:
        while len(line) > self.limit:
            piece, line = line[: self.limit], line[self.limit :]
            self.position += len(piece)
            yield piece, self.position
        self.position += len(line) + 1
        yield line, self.position


class LineSplitter:
    """Calls back with each decoded whole line of a stream; flush() delivers an unterminated rest."""

    def __init__(self, callback: LineCallback | None):
        self.callback = callback
        self._buffer = LineBuffer()

    def feed(self, data: bytes) -> None:
        if self.callback is None:
            return
        for line, _ in self._buffer.feed(data):
            self.callback(line.decode("utf-8", "replace"))

    def flush(self) -> None:
        if self.callback is not None and self._buffer.pending:
            self.callback(self._buffer.pending.decode("utf-8", "replace"))
        self._buffer.pending = b""


__all__ = [
    "LINE_LIMIT",
    "OUTPUT_LIMIT",
    "READ_LIMIT",
    "LineBuffer",
    "LineCallback",
    "LineSplitter",
    "PartialCallback",
    "RunResult",
    "SCRIPT_COMMAND",
    "Shell",
    "build_script",
]
