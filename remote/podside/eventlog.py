"""The pod's senders of events: each event once, in the run's event log and to the webhooks.

    eventlog.emit(paths, Event.FINISHED, run_id, attempt, ...)

The one rule (runfiles.py, the shared design): a sender first creates .runner/sent/<event id> with
O_CREAT|O_EXCL; only the one that created it appends the event to .runner/events/<run_id>.jsonl (one
write on an O_APPEND descriptor, under PIPE_BUF, so lines never interleave) and notifies
(notify.send_detached, when notify.json lists URLs). A repeat of the same event is a no-op. Every
write is best effort: a volume that fails here never keeps training, a launch or a stop from going
on (and a marker that cannot be written does not silence the notification).
"""

from __future__ import annotations

import errno
import json
import os
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from . import notify
from .contract import RUN_ID_RE, Event, EventKey, EventSource, VolumePaths, event_id, new_event
from .record import utc_now
from .rpenvfile import read_env_file

LINE_LIMIT = 4000  # bytes; PIPE_BUF is 4096 on Linux
FIELD_LIMIT = 1000  # characters of the message or the checkpoint path
MAX_RECURRENCES = 1000


def pod_id(rp_env_file: str, environ: Mapping[str, str]) -> Optional[str]:
    """RUNPOD_POD_ID from the environment, else from RunPod's env file (read, never run)."""
    return environ.get("RUNPOD_POD_ID") or (read_env_file(rp_env_file) or {}).get("RUNPOD_POD_ID") or None


def claim(marker: str, mode: int = 0o644) -> Optional[bool]:
    """True: this process sends the event whose marker this is; False: it was sent already; None: the
    marker could not be written."""
    try:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
    except OSError:
        return None
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        return True
    except OSError as exc:
        return False if exc.errno == errno.EEXIST else None


def claim_id(
    marker_of: Callable[[str], str],
    run_id: str,
    attempt: Optional[int],
    event: Event,
    recurring: bool,
    mode: int = 0o644,
) -> Tuple[Optional[str], Optional[bool]]:
    """The id a sender takes for an event, and claim()'s answer for it: (None, False) when it was sent
    already. A recurring event (idle-stopped, stalled with action notify, waiting-for-capacity) takes the
    next free id (`...:<event>:2`, `:3`...). The runner's senders use this too (runner/eventlog.py)."""
    eid, claimed = event_id(run_id, attempt, event.value), None
    for n in range(1, MAX_RECURRENCES + 1 if recurring else 2):
        eid = event_id(run_id, attempt, event.value, n)
        claimed = claim(marker_of(eid), mode)
        if claimed is not False:
            return eid, claimed
    return None, False


def append(path: str, event: Mapping[str, Any], mode: int = 0o644) -> None:
    """One line in a run's event log, in a single write under PIPE_BUF (raises OSError)."""
    data = (json.dumps(dict(event), separators=(",", ":")) + "\n").encode("utf-8")
    if len(data) > LINE_LIMIT:  # only a huge message gets here: keep the line whole, not the message
        event = dict(event, **{EventKey.MESSAGE: "(message too long)"})
        data = (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def emit(
    paths: VolumePaths,
    event: Event,
    run_id: Optional[str],
    attempt: Optional[int],
    *,
    pod: Optional[str] = None,
    step: Optional[int] = None,
    checkpoint: Optional[str] = None,
    message: Optional[str] = None,
    recurring: bool = False,
    log: Optional[Callable[[str], None]] = None,
) -> Optional[Dict[str, Any]]:
    """Record and send one event of the pod's; the event, or None when it was sent already (or there is
    no run to tell about). recurring: an event that can happen again in the same attempt (idle-stopped,
    stalled with action notify) takes the next free id (`...:<event>:2`, `:3`...)."""
    say = log or (lambda _line: None)
    if not run_id or not RUN_ID_RE.match(run_id):
        return None
    eid, claimed = claim_id(paths.sent_marker, run_id, attempt, event, recurring)
    if eid is None:
        return None
    if claimed is None:
        say(f"event {eid}: could not write {paths.sent_marker(eid)}; sending anyway")
    record = new_event(
        id=eid,
        event=event.value,
        run_id=run_id,
        pod_id=pod,
        attempt=attempt,
        step=step,
        checkpoint=checkpoint[:FIELD_LIMIT] if checkpoint else checkpoint,
        message=message[:FIELD_LIMIT] if message else message,
        time=utc_now(),
        source=EventSource.POD,
    )
    try:
        append(paths.events_file(run_id), record)
    except OSError as exc:
        say(f"event {eid}: could not append to the event log ({exc.strerror})")
    urls = notify.read_urls(paths.notify_file)
    if urls:
        try:
            notify.send_detached(urls, record, paths.notify_log)
        except OSError as exc:  # fork refused: the event stays in the log
            say(f"event {eid}: could not start the notification ({exc.strerror})")
    return record
