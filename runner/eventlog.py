"""The run's timeline on this machine, and the events the runner and the watcher send (the shared design:
the pod sends started, recovered, finished, failed, stalled, idle-stopped and its gave-up; the runner or
the watcher, whichever sees it, preempted, recovering, budget-reached, waiting-for-capacity, gave-up).

    events = RunnerEvents.of(settings, EventSource.WATCHER)
    events.emit(Event.PREEMPTED, run_id, attempt, pod=pod_id, step=412, message="Outbid")

Each event once: the sender first creates <state dir>/<stack>/sent/<event id> with O_EXCL (several
runners and watchers on one machine: one sends); then it appends the event to
<state dir>/<stack>/events/<run_id>.jsonl and notifies (runner/notify.py, a detached child). Nothing here
raises or waits: a full disk or a dead webhook never holds up a recovery or a stop.
The pod's own events are on the volume (.runner/events/<run_id>.jsonl); `runner events` merges both by id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remote.podside.contract import RUN_ID_RE, Event, EventKey, new_event
from remote.podside.eventlog import append, claim_id
from runner.paths import StatePaths
from runner.settings import Settings
from runner.timestamps import utc_now
from runner.types import Say, say_nothing


@dataclass
class RunnerEvents:
    paths: StatePaths
    source: str  # EventSource.RUNNER | EventSource.WATCHER
    urls: list[str]
    warn: Say = say_nothing  # where a failure to record or notify is said (never raised)

    @classmethod
    def of(cls, settings: Settings, source: str, *, warn: Say = say_nothing) -> RunnerEvents:
        return cls(settings.paths, source, list(settings.notify_urls), warn)

    def emit(
        self,
        event: Event,
        run_id: str,
        attempt: int | None,
        *,
        pod: str | None = None,
        step: int | None = None,
        checkpoint: str | None = None,
        cost_usd: float | None = None,
        message: str | None = None,
        recurring: bool = False,
    ) -> dict[str, Any] | None:
        """Record and send the event; the event, or None when this machine sent it already. recurring: an
        event that may come again in one attempt (waiting-for-capacity after each preemption) takes the
        next free id."""
        if not RUN_ID_RE.match(run_id or ""):
            return None
        eid, claimed = claim_id(lambda e: str(self.paths.sent_marker(e)), run_id, attempt, event, recurring, 0o600)
        if eid is None:
            return None
        if claimed is None:
            self.warn(f"warning: could not mark event {eid} as sent; sending it anyway")
        record = new_event(
            id=eid,
            event=event.value,
            run_id=run_id,
            pod_id=pod,
            attempt=attempt,
            step=step,
            checkpoint=checkpoint,
            cost_usd=round(cost_usd, 4) if cost_usd is not None else None,
            message=message,
            time=utc_now(),
            source=self.source,
        )
        try:
            append(str(self.paths.events_file(run_id)), record, 0o600)
        except OSError as e:
            self.warn(f"warning: could not record event {eid} ({e.strerror})")
        if self.urls:
            from runner import notify

            try:
                notify.send_detached(self.urls, record, self.paths.notify_log)
            except OSError as e:
                self.warn(f"warning: could not start the notification of {eid} ({e.strerror})")
        return record


def parse_lines(data: bytes | str) -> list[dict[str, Any]]:
    """The events of a .jsonl text (the pod's is data from an untrusted machine: a line that is not an
    event object is skipped, values are kept only under known keys)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    out = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get(EventKey.ID), str) and isinstance(obj.get(EventKey.EVENT), str):
            out.append({key: obj.get(key) for key in EventKey.ALL})
    return out


def merge(*sources: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One timeline: every event once (by id), in time order."""
    seen: dict[str, dict[str, Any]] = {}
    for events in sources:
        for e in events:
            seen.setdefault(str(e[EventKey.ID]), dict(e))
    return sorted(seen.values(), key=lambda e: (str(e.get(EventKey.TIME) or ""), str(e[EventKey.ID])))


def keep_copies(paths: StatePaths, run_id: str, events: Iterable[Mapping[str, Any]]) -> None:
    """The pod's events read from the volume, kept in this machine's copy of the timeline too, so that
    `runner events` still shows them once the pod is stopped and the volume out of reach (best effort)."""
    known = {e[EventKey.ID] for e in read_local(paths, run_id)}
    for e in events:
        if e[EventKey.ID] not in known and e.get(EventKey.RUN_ID) == run_id:
            try:
                append(str(paths.events_file(run_id)), e, 0o600)
            except OSError:
                return
            known.add(e[EventKey.ID])


def read_local(paths: StatePaths, run_id: str) -> list[dict[str, Any]]:
    try:
        return parse_lines(paths.events_file(run_id).read_bytes())
    except OSError:
        return []


__all__ = ["RunnerEvents", "keep_copies", "merge", "parse_lines", "read_local"]
