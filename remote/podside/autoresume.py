"""The pod resumes its own run when its container starts.

    python3 <workspace>/.runner/podside-current.pyz autoresume --workspace /workspace

The pod's start command (bundle.start_command) starts this in the background, detached, before it
execs the image's own start script, at every container start: after a preemption once the pod is
resumed (by the watcher, the RunPod console, a host restart...). It waits for the launch lock, then
relaunches the current run (state.json's run id) when all of these hold (with several pods on one
volume, --pod-slot: this pod's state.json, lock and hold, so a pod only ever resumes its own run):
  * the run is unfinished (runfiles.is_unfinished: its last attempt was preempted, or was setup/running
    and its supervisor is gone: the container died under it);
  * it has a spec (runs/<id>/spec.json) that does not opt out (auto_resume, from the stack's autoResume);
  * it is not held (hold.json: the runner stopped it on purpose: runner stop, the budget);
  * its recoveries (attempts after the first) are under the spec's max_recoveries; at the limit it
    sends `gave-up` instead (so does a relaunch the launcher refuses).
The relaunch is the launch `runner train` makes (launch.launch_locked, under the same lock): same run
id, the next attempt, the newest complete checkpoint, exactly the spec's commit (pinned), in tmux; the
launcher sends `recovered`. A launch that came first wins: its session runs, and this one attaches
(already-running) and starts nothing. Its environment: this container's, with the last attempt's saved
launch environment (supervise.json, same run: what training had) over it and the spec's RT_* inputs
over both. Training's secrets need nothing here: they stay on the volume (trainsecrets.py) until the run
ends, and the supervisor reads them there. What it decides goes to stdout (the start command appends it
to logs/autoresume.log).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, Mapping, Optional

from . import eventlog, launch, record, runspec
from .contract import (
    DEFAULT_WORKSPACE,
    Event,
    Inputs,
    PlanKey,
    SpecKey,
    StateKey,
    VolumePaths,
    is_held,
    is_unfinished,
    recoveries,
)
from .idlewatch import process_runs
from .inputs import InputError, check_launch, read_settings

LOCK_WAIT_S = 600.0


def say(message: str) -> None:
    sys.stdout.write(f"{record.utc_now()} [autoresume] {message}\n")
    sys.stdout.flush()


def relaunch_environment(container: Mapping[str, str], paths: VolumePaths, spec: Mapping[str, Any]) -> Dict[str, str]:
    """This container's environment, the run's last saved launch environment over it, the spec's inputs
    over both (never RT_NOTIFY_URLS: notify.json stays as the last launch wrote it)."""
    env = dict(container)
    plan = record.load(paths.supervisor_plan) or {}
    saved = plan.get(PlanKey.ENV)
    if plan.get(PlanKey.RUN_ID) == spec.get(SpecKey.RUN_ID) and isinstance(saved, dict):
        env.update({str(k): str(v) for k, v in saved.items()})
    for name in (Inputs.ACTION, Inputs.NOTIFY_URLS, Inputs.TRAIN_SECRETS, Inputs.REPO_COMMIT, "TMUX", "TMUX_PANE"):
        env.pop(name, None)
    env.update(runspec.relaunch_inputs(spec))
    env[Inputs.POD_SLOT] = paths.slot  # this pod's records, whichever pod launched the run before
    return env


def decide(paths: VolumePaths, state: Optional[Dict[str, Any]], spec: Optional[Dict[str, Any]]) -> Optional[str]:
    """Why the current run is not resumed, or None (resume it); gave_up() covers the limit."""
    run_id = (state or {}).get(StateKey.RUN_ID)
    if not state or not run_id:
        return "no run recorded on this volume"
    if not is_unfinished(state, process_runs(state.get(StateKey.SUPERVISOR_PID), b"supervise")):
        return f"run {run_id} attempt {state.get(StateKey.ATTEMPT)} is {state.get(StateKey.STATE)}: nothing to resume"
    if spec is None:
        return f"run {run_id} has no spec (launched by an older version): resume it with `runner train`"
    if not spec.get(SpecKey.AUTO_RESUME, True):
        return f"run {run_id}: auto-resume is off for this stack (autoResume: false)"
    if is_held(record.load(paths.hold_file), run_id, state.get(StateKey.ATTEMPT)):
        return f"run {run_id} is held (stopped on purpose; see {paths.hold_file})"
    return None


def over_limit(state: Dict[str, Any], spec: Dict[str, Any]) -> Optional[str]:
    limit = spec.get(SpecKey.MAX_RECOVERIES)
    done = recoveries(state)
    if isinstance(limit, int) and not isinstance(limit, bool) and done >= limit:
        return f"the run already recovered {done} time(s), its limit (--max-recoveries {limit}); not relaunched"
    return None


def resume(paths: VolumePaths, program: str, container: Mapping[str, str]) -> int:
    """Under the launch lock: relaunch the current run when decide() and the limit allow it."""
    state = record.load(paths.state_file)
    spec = runspec.read(paths, (state or {}).get(StateKey.RUN_ID))
    why_not = decide(paths, state, spec)
    if why_not:
        say(why_not)
        return 0
    assert state is not None and spec is not None
    run_id, attempt = str(state[StateKey.RUN_ID]), state.get(StateKey.ATTEMPT)
    environ = relaunch_environment(container, paths, spec)
    pod = eventlog.pod_id(environ.get(Inputs.RP_ENV_FILE) or "/etc/rp_environment", environ)

    def give_up(why: str) -> int:
        say(why)
        eventlog.emit(
            paths,
            Event.GAVE_UP,
            run_id,
            attempt,
            pod=pod,
            checkpoint=state.get(StateKey.LAST_CHECKPOINT),
            message=why,
            log=say,
        )
        return 0

    limit = over_limit(state, spec)
    if limit:
        return give_up(limit)
    try:
        s = read_settings(environ)._replace(pin_commit=True)
        check_launch(s)
        launch.prepare(s)
    except InputError as exc:
        return give_up(f"could not relaunch run {run_id}: {exc}")
    say(f"resuming run {run_id}: attempt {state.get(StateKey.ATTEMPT)} was {state.get(StateKey.STATE)}")
    os.environ.clear()
    os.environ.update(environ)  # tmux's server, git and the supervisor start from it
    try:
        return launch.launch_locked(s, environ, program)
    except InputError as exc:
        return give_up(f"could not relaunch run {run_id}: {exc}")


def main(argv: list, program: str) -> int:
    ap = argparse.ArgumentParser(prog="podside autoresume")
    ap.add_argument("--workspace", default=os.environ.get(Inputs.WORKSPACE) or DEFAULT_WORKSPACE)
    ap.add_argument("--pod-slot", default=os.environ.get(Inputs.POD_SLOT) or "")
    ap.add_argument("--lock-wait-seconds", type=float, default=LOCK_WAIT_S)
    args = ap.parse_args(argv)
    paths = VolumePaths(args.workspace, args.pod_slot)
    if not os.path.isdir(paths.runner_dir):
        say(f"{paths.runner_dir} does not exist: nothing was ever launched here")
        return 0
    try:
        with launch.launch_lock(paths.lock_file, wait_s=args.lock_wait_seconds):
            return resume(paths, program, dict(os.environ))
    except InputError as exc:  # the lock: a launch that took longer than the wait
        say(f"not resumed: {exc}")
        return 2
