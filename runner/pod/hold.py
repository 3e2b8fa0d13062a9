"""Before the runner stops a run on purpose (`runner stop`, --budget-usd, a Ctrl-C that abandons a
recovery) it writes <workspace>/.runner/hold.json on the pod: the pod's own start then does not resume
that run (remote/podside/autoresume.py), and the supervisor records its SIGTERM as `stopped`, not
`preempted`. Best effort: a pod that cannot be reached or a write that fails never holds up the stop;
the warning says what that means.

    hold(conn, VolumePaths(ws, slot), run_id, attempt, HoldReason.STOP)     attempt None: every attempt of the run
"""

from __future__ import annotations

import json

from remote.podside.contract import RUN_ID_RE, HoldKey, StateKey, VolumePaths, parse_json_object
from runner.remote.shell import Shell
from runner.timestamps import utc_now


def hold(conn: Shell, paths: VolumePaths, run_id: str, attempt: int | None, reason: str) -> None:
    """Raises RunnerError (SSH) or OSError when it could not be written. paths: the pod's (its slot)."""
    record = {HoldKey.RUN_ID: run_id, HoldKey.ATTEMPT: attempt, HoldKey.AT: utc_now(), HoldKey.REASON: reason}
    conn.write_file(paths.hold_file, (json.dumps(record) + "\n").encode(), mode=0o644)


def hold_current(conn: Shell, paths: VolumePaths, reason: str) -> str | None:
    """Hold the run the pod's state file names (every attempt of it); the run id, or None when none."""
    state = parse_json_object(conn.read_file(paths.state_file)) or {}
    run_id = state.get(StateKey.RUN_ID)
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        return None
    hold(conn, paths, run_id, None, reason)
    return run_id


__all__ = ["hold", "hold_current"]
