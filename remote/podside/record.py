"""The state record, <workspace>/.runner/state.json: one JSON object for the current attempt.

Every change replaces the file atomically (a temp file in the same directory, fsync, rename), so a
reader sees the old record or the new one, never half of one, even across a crash of the pod.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any, Dict, Optional

from .contract import StateKey, keyed, parse_json_object

_counter = itertools.count()


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load(path: str) -> Optional[Dict[str, Any]]:
    """The record, or None when there is none (or it is not a JSON object)."""
    try:
        with open(path, "rb") as fh:
            return parse_json_object(fh.read())
    except OSError:
        return None


def write_json_atomic(path: str, data: Dict[str, Any], *, mode: int = 0o644) -> None:
    tmp = f"{path}.tmp.{os.getpid()}.{next(_counter)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # the rename itself survives a crash once the directory is synced
        dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def next_attempt(previous: Optional[Dict[str, Any]], run_id: str) -> int:
    """The same run id as the record's = the next attempt of that run; anything else starts at 1."""
    if not previous or previous.get(StateKey.RUN_ID) != run_id:
        return 1
    attempt = previous.get(StateKey.ATTEMPT)
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        return 1
    return attempt + 1


def new_record(**values: Any) -> Dict[str, Any]:
    """A record with every StateKey, in the documented order; unknown names are a programming error."""
    return keyed(StateKey.ALL, values, "state.json")


class StateFile:
    """The record of one attempt, kept in memory and written through on every change."""

    def __init__(self, path: str, data: Optional[Dict[str, Any]] = None):
        self.path = path
        self.data: Dict[str, Any] = dict(data or {})

    def write(self) -> None:
        write_json_atomic(self.path, self.data)

    def update(self, **changes: Any) -> None:
        """Merge changes into the record on disk (re-read first: a launch may have added keys)."""
        unknown = set(changes) - set(StateKey.ALL)
        if unknown:
            raise KeyError(f"not state.json keys: {sorted(unknown)}")
        current = load(self.path)
        if current is not None:
            self.data = current
        self.data.update(changes)
        self.write()
