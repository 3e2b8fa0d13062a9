"""`runner events [--run ID] [--follow] [--json]`: the run's timeline, every event with its time.

The pod's events are on the volume (.runner/events/<run_id>.jsonl: started, recovered, finished, failed,
stalled, idle-stopped), read over SSH while the pod runs and through S3 while it is stopped; the
runner's and the watcher's are in this machine's state dir (preempted, recovering, budget-reached,
waiting-for-capacity, gave-up). Both are merged by event id. --follow reads them again every few
seconds until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from remote.podside.contract import RUN_ID_RE, EventKey, StateKey, VolumePaths, parse_json_object
from runner import eventlog
from runner.errors import RunnerError, UsageError
from runner.output import plain as _say
from runner.settings import Settings
from runner.termtext import VALUE, for_stream

FOLLOW_EVERY_S = 3.0


def line_of(e: dict[str, Any]) -> str:
    """One event for people; every value from the pod is shown as data (no terminal control)."""
    parts = [str(e.get(EventKey.TIME) or "?"), f"{e.get(EventKey.EVENT)!s:<21}"]
    if e.get(EventKey.ATTEMPT) is not None:
        parts.append(f"attempt {e[EventKey.ATTEMPT]}")
    if e.get(EventKey.STEP) is not None:
        parts.append(f"step {e[EventKey.STEP]}")
    if e.get(EventKey.POD_ID):
        parts.append(f"pod {e[EventKey.POD_ID]}")
    if e.get(EventKey.COST_USD) is not None:
        try:
            parts.append(f"~${float(e[EventKey.COST_USD]):.2f}")
        except (TypeError, ValueError):
            pass
    text = "  ".join(parts) + f"  ({e.get(EventKey.SOURCE)})"
    if e.get(EventKey.MESSAGE):
        text += f": {e[EventKey.MESSAGE]}"
    return for_stream(text, sys.stdout, VALUE)  # the pod's values: no terminal control (runner/termtext.py)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from runner.pod.stack import read_outputs_for
    from runner.volume.volume_files import VolumeFiles

    run_id = args.run
    if run_id is not None and not RUN_ID_RE.match(run_id):
        raise UsageError(f"--run {run_id!r} is not a run id")
    settings.preflight()
    outputs = read_outputs_for(settings)
    shown: set[str] = set()
    paths = outputs.volume_paths
    with VolumeFiles.open(settings, outputs) as files:
        if run_id is None:
            run_id = _newest_run(settings, files, paths)
        if run_id is None:
            _say("no run yet: nothing has happened on this stack's volume or from this machine")
            return 0
        if files.how is None:
            _say(f"note: only this machine's events of run {run_id}: {files.why_not}")
        try:
            while True:
                pod_events = _pod_events(files, paths, run_id)
                eventlog.keep_copies(settings.paths, run_id, pod_events)
                for e in eventlog.merge(pod_events, eventlog.read_local(settings.paths, run_id)):
                    if e[EventKey.ID] in shown:
                        continue
                    shown.add(e[EventKey.ID])
                    print(json.dumps(e) if args.json else line_of(e), flush=True)
                if not args.follow:
                    return 0
                time.sleep(FOLLOW_EVERY_S)
        except KeyboardInterrupt:
            return 0


def _pod_events(files, paths: VolumePaths, run_id: str) -> list[dict[str, Any]]:
    if files.how is None:
        return []
    try:
        data = files.read(paths.events_file(run_id))
    except RunnerError as e:
        _say(f"warning: could not read the pod's events ({e.message})")
        return []
    return eventlog.parse_lines(data) if data else []


def _newest_run(settings: Settings, files, paths: VolumePaths) -> str | None:
    """The run the volume's state names (the pod's current run), else this machine's last run."""
    if files.how is not None:
        try:
            state = parse_json_object(files.read(paths.state_file))
        except RunnerError:
            state = None
        rid = (state or {}).get(StateKey.RUN_ID)
        if isinstance(rid, str) and RUN_ID_RE.match(rid):
            return rid
    try:
        rid = settings.paths.last_run.read_text().strip()
    except OSError:
        return None
    return rid if RUN_ID_RE.match(rid) else None
