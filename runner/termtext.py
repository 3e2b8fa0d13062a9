"""Text from the pod, made safe for a terminal: one sanitizer in front of the live log and every value
that comes from the pod (or through it: state files, the launcher's lines, listings, the API's free text).

A terminal acts on what it is sent: an OSC 52 sequence writes the clipboard (`curl … | sh` waiting for
the next paste), OSC 8 hides a link behind harmless text, others retitle the window, move the cursor,
clear the screen under a forged "training succeeded". On a terminal, what comes from the pod keeps
only printable text, SGR colour sequences (ESC [ digits m) and the layout characters its kind needs
(the log: \\r, \\n and \\t, so progress bars still redraw; a value: none). Every other escape sequence
and C0/C1 control character (ESC, BEL, backspace, DEL, U+0080-U+009F with the 8-bit CSI), and the
bidirectional overrides that reorder a line, are shown escaped (`\\x1b`, `\\u202e`), so they are
visible and inert. Pipes and files get the exact text. `--raw` (a global flag of `python -m runner`)
turns the sanitizer off on a terminal too.

    print_log_line(line)                a log line (bytes) on stdout, cleaned on a terminal
    for_stream(text, stream, keep=LOG)  text as it may be written to stream
    clean(text, keep=LOG)               the sanitizer itself (always applied)
"""

from __future__ import annotations

import re
import sys
from typing import Any

LOG = "\r\n\t"  # the training log: progress bars redraw (\r), lines, tabs
LINES = "\n\t"  # a message: several lines at most, never a redraw over the runner's prefix
VALUE = ""  # one value in a line (a run id, a path, a status field)

_SGR = r"\x1b\[[0-9;:]{0,64}m"
# Unicode's bidirectional overrides and isolates reorder what a line shows (a forged line's text can
# read backwards into place): escaped like the control characters.
BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
_CONTROLS = "\x00-\x1f\x7f-\x9f"
_PATTERNS: dict[str, re.Pattern[str]] = {}
_INCOMPLETE_SGR = re.compile(r"\x1b(?:\[[0-9;:]{0,64})?\Z")

_raw = False


def set_raw(raw: bool) -> None:
    """--raw: no sanitizing on a terminal either (the bytes as the pod wrote them)."""
    global _raw
    _raw = raw


def raw() -> bool:
    return _raw


def _pattern(keep: str) -> re.Pattern[str]:
    found = _PATTERNS.get(keep)
    if found is None:
        codes = [*range(0x20), *range(0x7F, 0xA0), *BIDI]
        controls = "".join(c for c in map(chr, codes) if c not in keep)
        found = re.compile(f"({_SGR})|([{re.escape(controls)}])")
        _PATTERNS[keep] = found
    return found


def _escape(match: re.Match[str]) -> str:
    if match.group(1):
        return match.group(1)
    code = ord(match.group(2))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str, keep: str = LOG) -> str:
    """text with every control character except SGR sequences and those in `keep` shown escaped."""
    if text.isprintable():  # no control, format (bidi) or separator character at all: nothing to do
        return text
    return _pattern(keep).sub(_escape, text)


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def guarded(stream: Any) -> bool:
    """Whether text for `stream` must be cleaned: a terminal, and no --raw."""
    return not _raw and is_terminal(stream)


def for_stream(text: str, stream: Any, keep: str = LOG) -> str:
    """text as it may be written to stream: cleaned on a terminal (unless --raw), exact otherwise."""
    return clean(text, keep) if guarded(stream) else text


def bytes_for_stream(data: bytes, stream: Any, keep: str = LOG) -> bytes:
    """The bytes form of for_stream (for sinks that write the log's bytes to stream.buffer)."""
    if not guarded(stream):
        return data
    return clean(data.decode("utf-8", "replace"), keep).encode("utf-8")


def hold_back(text: str) -> str:
    """text without an SGR sequence cut off at its end (a live line shown as it grows: the sequence
    is shown once its rest arrives, instead of escaped now)."""
    return _INCOMPLETE_SGR.sub("", text) if "\x1b" in text[-70:] else text


def clean_values(value: Any, keep: str = VALUE) -> Any:
    """Every string inside a JSON-like value (dicts, lists) cleaned: a report made of pod values."""
    if isinstance(value, str):
        return clean(value, keep)
    if isinstance(value, dict):
        return {k: clean_values(v, keep) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_values(v, keep) for v in value]
    return value


def print_log_line(line: bytes, stream: Any = None) -> None:
    """One line of the training log (bytes, without its newline) on stdout: exact into a pipe or a
    file, cleaned on a terminal."""
    out = stream or sys.stdout
    out.flush()
    out.buffer.write(bytes_for_stream(line, out) + b"\n")
    out.buffer.flush()


__all__ = [
    "LINES",
    "LOG",
    "VALUE",
    "bytes_for_stream",
    "clean",
    "clean_values",
    "for_stream",
    "guarded",
    "hold_back",
    "print_log_line",
    "is_terminal",
    "raw",
    "set_raw",
]
