"""The log's header, footer and notes: how the launcher and the supervisor mark an attempt in
<workspace>/logs/current.log, and the parsers the runner reads them back with.

Part of the runner-pod protocol (contract.py re-exports every name here, so `contract.Header` and
`contract.parse_footer` keep working); split out so the protocol module stays small. Standard
library only: it travels to the pod inside the pod-side program.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple, Optional

NOTE_PREFIX = "[remote_train] "
SIGTERM_NOTE = NOTE_PREFIX + "SIGTERM received"
BANNER = "====="
NONE = "none"  # how the log lines spell a missing value


def _none(value: Optional[str]) -> Optional[str]:
    return None if value in (None, "", NONE, "None") else value


def _int_or_none(value: Optional[str]) -> Optional[int]:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# The patterns search (not match): a line the training left unfinished (a progress bar redrawn
# with \r) can precede the banner on the same line of the log. Compiled on first use: the pod side
# writes these lines and never parses them.
@functools.lru_cache(maxsize=None)
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        {
            "header": r"===== (?P<time>\S+) run=(?P<run>\S+) attempt=(?P<attempt>\d{1,9}) config=(?P<config>.*) "
            r"resume=(?P<resume>\S+) =====$",
            "footer": r"===== (?P<time>\S+) run=(?P<run>\S+) attempt=(?P<attempt>\d{1,9}) end state=(?P<state>\w+) "
            r"exit=(?P<exit>\S+) checkpoint=(?P<ckpt>.*) =====$",
            "ended": r"^\[remote_train\] training ended: state=(?P<state>\w+) exit_code=(?P<exit>\S+) "
            r"last_checkpoint=(?P<ckpt>\S+)",
        }[name]
    )


class Header(NamedTuple):
    """The first log line of an attempt."""

    time: str
    run_id: str
    attempt: int
    config: str
    resume_from: Optional[str]

    def line(self) -> str:
        return (
            f"===== {self.time} run={self.run_id} attempt={self.attempt} config={self.config} "
            f"resume={self.resume_from or NONE} ====="
        )


class Footer(NamedTuple):
    """The last log line of an attempt (written when it ends; on preemption if the 5 s allow)."""

    time: str
    run_id: str
    attempt: int
    state: str
    exit_code: Optional[int]
    checkpoint: Optional[str]

    def line(self) -> str:
        code = NONE if self.exit_code is None else str(self.exit_code)
        return (
            f"===== {self.time} run={self.run_id} attempt={self.attempt} end state={self.state} "
            f"exit={code} checkpoint={self.checkpoint or NONE} ====="
        )


class EndedNote(NamedTuple):
    """`[remote_train] training ended: ...`, written just before the footer."""

    state: str
    exit_code: Optional[int]
    checkpoint: Optional[str]

    def line(self, detail: str = "") -> str:
        code = NONE if self.exit_code is None else str(self.exit_code)
        return (
            f"{NOTE_PREFIX}training ended: state={self.state} exit_code={code} "
            f"last_checkpoint={self.checkpoint or NONE}" + (f" ({detail})" if detail else "")
        )


def is_launcher_line(text: str) -> bool:
    """A line the launcher wrote (header, footer, note) rather than training."""
    return text.startswith((BANNER, NOTE_PREFIX))


def parse_footer(text: str) -> Optional[Footer]:
    m = _pattern("footer").search(text)
    if not m:
        return None
    return Footer(m["time"], m["run"], int(m["attempt"]), m["state"], _int_or_none(m["exit"]), _none(m["ckpt"]))


def parse_header(text: str) -> Optional[Header]:
    if " end state=" in text:
        return None
    m = _pattern("header").search(text)
    if not m:
        return None
    return Header(m["time"], m["run"], int(m["attempt"]), m["config"], _none(m["resume"]))


def parse_ended_note(text: str) -> Optional[EndedNote]:
    m = _pattern("ended").match(text)
    if not m:
        return None
    return EndedNote(m["state"], _int_or_none(m["exit"]), _none(m["ckpt"]))


def is_sigterm_note(text: str) -> bool:
    return text.startswith(SIGTERM_NOTE)
