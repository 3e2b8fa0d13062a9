"""When is the followed attempt over? Decided from the log itself where possible.

In order of preference: the attempt's footer line; the launcher's `training ended: ...` /
`SIGTERM received` notes (then up to grace_s more for the footer); a header of another run or
attempt (ours was superseded); and, as a slow safety net, the state file (read every poll_s
seconds: each read is a remote command). When the state file still says the attempt runs but its
supervisor process is gone (it died without a word: a full volume fails every write it makes), the
attempt is over too ("lost"): the runner stops following and makes sure the pod stops, instead of
following a log that no longer grows, with its SSH session keeping the pod busy for the idle stop.
Formats: remote/podside/contract.py.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import Any

from remote.podside import contract as pc
from remote.podside.contract import AttemptState, StateKey
from runner import timeouts
from runner.errors import RunnerError, SshDisconnected, SshError, SshTimeout
from runner.remote.shell import READ_LIMIT, Shell
from runner.train.events import Ended, Interrupted, Launched
from runner.types import Say

LOST = "lost"  # the attempt's supervisor died without recording its end


class EndWatch:
    def __init__(self, run_id: str, attempt: int, state_file: str, *, grace_s: float, poll_s: float):
        self.run_id, self.attempt, self.state_file = run_id, attempt, state_file
        self.grace_s, self.poll_s = grace_s, poll_s
        self.footer: Ended | None = None
        self.note: Ended | None = None
        self.from_state: Ended | None = None
        self.superseded = False
        self._note_at: float | None = None
        self._state_at: float | None = None
        self._last_poll = time.monotonic()
        # The run's budget: the interruption once it is reached (it has then stopped the pod), else None.
        self.budget: Callable[[], Interrupted | None] | None = None
        self.interrupted: Interrupted | None = None

    def feed(self, text: str) -> None:
        if pc.BANNER not in text and not text.startswith(pc.NOTE_PREFIX):
            return
        footer = pc.parse_footer(text)
        if footer is not None:
            if (footer.run_id, footer.attempt) == (self.run_id, self.attempt):
                self.footer = Ended(footer.state, footer.exit_code, footer.checkpoint, "footer", ended_at=footer.time)
            return
        header = pc.parse_header(text)
        if header is not None:
            if (header.run_id, header.attempt) != (self.run_id, self.attempt):
                self.superseded = True
            return
        note = pc.parse_ended_note(text)
        if note is not None:
            self.note = Ended(note.state, note.exit_code, note.checkpoint, "note")
        elif pc.is_sigterm_note(text):
            self.note = Ended(AttemptState.PREEMPTED.value, None, None, "note")
        else:
            return
        self._note_at = time.monotonic()

    def should_stop(self, conn: Shell | None) -> bool:
        if self.footer is not None or self.superseded:
            return True
        if self.budget is not None and self.interrupted is None:
            self.interrupted = self.budget()
            if self.interrupted is not None:
                return True
        now = time.monotonic()
        if self._note_at is not None:
            return now - self._note_at >= self.grace_s
        if self._state_at is not None:
            return now - self._state_at >= self.grace_s
        if conn is None or now - self._last_poll < self.poll_s:
            return False
        self._last_poll = now
        state = self.read_state(conn)
        if state is None:
            return False
        attempt = state.get(StateKey.ATTEMPT)
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            attempt = 0  # the pod's file: whatever it holds, never a crash of the follower
        if state.get(StateKey.RUN_ID) != self.run_id or attempt > self.attempt:
            self.superseded = True  # another launch replaced ours in the state file
            return True
        if attempt == self.attempt and state.get(StateKey.STATE) in pc.TERMINAL_STATES:
            self.from_state = Ended(
                state[StateKey.STATE],
                state.get(StateKey.EXIT_CODE),
                state.get(StateKey.LAST_CHECKPOINT),
                "state",
                state.get(StateKey.STARTED_AT),
                state.get(StateKey.ENDED_AT),
            )
            self._state_at = now
        elif attempt == self.attempt and self.supervisor_gone(conn, state.get(StateKey.SUPERVISOR_PID)):
            self.from_state = Ended(
                LOST, None, state.get(StateKey.LAST_CHECKPOINT), "supervisor gone", state.get(StateKey.STARTED_AT)
            )
            self._state_at = now
        return False

    def supervisor_gone(self, conn: Shell, pid: Any) -> bool:
        """The attempt's supervisor is no longer alive (False when that cannot be told: no pid, no /proc)."""
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return False
        limit = timeouts.current().state_check_timeout_s
        try:
            res = conn.run(
                f"[ -d /proc/self ] || exit 0; grep -qa supervise /proc/{pid}/cmdline 2>/dev/null", timeout=limit
            )
        except SshTimeout:
            conn.close()
            raise SshDisconnected(f"no answer within {limit:g}s while checking the supervisor") from None
        except SshDisconnected:
            raise
        except SshError:
            return False
        return res.exit_code == 1

    def read_state(self, conn: Shell) -> dict[str, Any] | None:
        limit = timeouts.current().state_check_timeout_s
        try:
            # With a timeout: a half-dead link must not hang the follower (it reconnects instead).
            res = conn.run(f"head -c {READ_LIMIT} -- {shlex.quote(self.state_file)} 2>/dev/null; true", timeout=limit)
        except SshTimeout:
            conn.close()
            raise SshDisconnected(f"no answer within {limit:g}s while reading {self.state_file}") from None
        except SshDisconnected:
            raise
        except SshError:
            return None
        return pc.parse_json_object(res.stdout) if res.exit_code == 0 else None

    @property
    def ended(self) -> Ended | None:
        if self.footer or self.from_state or self.note:
            return self.footer or self.from_state or self.note
        return Ended("unknown", None, None, "superseded") if self.superseded else None


def acknowledge(connect: Callable[[], Shell], launched: Launched, ended: Ended, say: Say) -> Ended:
    """Tell the pod we saw the end (it then stops without waiting RT_ACK_WAIT) and read its final state:
    the end as the state file records it when it is this attempt's, else `ended` as the log showed it."""
    ack = launched.state_file.rsplit("/", 1)[0] + "/" + pc.VolumePaths().ack_file.rsplit("/", 1)[1]  # its sibling
    try:
        with connect() as conn:
            final = pc.parse_json_object(conn.read_file(launched.state_file))
            conn.write_file(ack, pc.ack_text(launched.run_id, launched.attempt).encode(), mode=0o644)
    except RunnerError as e:
        say(
            f"could not confirm the end to the pod ({e.message}); it stops itself after "
            f"{timeouts.current().ack_wait_s:g}s anyway"
        )
        return ended
    if (
        final
        and final.get(StateKey.RUN_ID) == launched.run_id
        and final.get(StateKey.ATTEMPT) == launched.attempt
        and final.get(StateKey.STATE) in pc.TERMINAL_STATES
    ):
        return Ended(
            final[StateKey.STATE],
            final.get(StateKey.EXIT_CODE),
            final.get(StateKey.LAST_CHECKPOINT) or ended.checkpoint,
            ended.source,
            final.get(StateKey.STARTED_AT),
            final.get(StateKey.ENDED_AT) or ended.ended_at,
        )
    return ended


__all__ = ["LOST", "EndWatch", "acknowledge"]
