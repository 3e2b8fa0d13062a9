"""The run's spec, .runner/runs/<run_id>/spec.json (SpecKey, mode 600): written by every launch, read
by a relaunch with nobody attached (autoresume.py) and by the runner's watcher.

It holds the launch's RT_* inputs as a relaunch exports them again (the repo URL without credentials),
the commit the launch checked out, and the run's limits and policies. The inputs it keeps are exactly
those read_settings() turns into the same LaunchSettings again.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Dict, List, Mapping, Optional

from . import notify, record
from .contract import RUN_ID_RE, Inputs, SpecKey, StallKey, VolumePaths
from .inputs import LaunchSettings

_USERINFO_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def without_credentials(url: str) -> str:
    """https://user:token@host/x -> https://host/x (an scp-like git@host:x has a user, no secret: kept)."""
    return _USERINFO_RE.sub(r"\1", url)


def inputs_of(s: LaunchSettings) -> Dict[str, str]:
    """The RT_* values that launch s again (no run id, commit or ack wait: the relaunch sets those)."""
    values = {
        Inputs.WORKSPACE: s.workspace,
        Inputs.REPO_URL: without_credentials(s.repo_url),
        Inputs.REPO_BRANCH: s.branch,
        Inputs.REPO_DIR: s.repo_dir,
        Inputs.CODE_SOURCE: s.code_source,
        Inputs.CONFIG: s.config,
        Inputs.TRAIN_SCRIPT: s.train_script,
        Inputs.LAUNCHER: s.launcher,
        Inputs.GPU_COUNT: s.gpu_count_text,
        Inputs.STOP_POD: "1" if s.stop_pod else "0",
        Inputs.SESSION: s.session,
        Inputs.PYTHON: s.python,
        Inputs.RP_ENV_FILE: s.rp_env_file,
        Inputs.IDLE_STOP_MINUTES: f"{s.idle_stop_minutes:g}",
        Inputs.SHARED_VOLUME: "1" if s.shared_volume else "",
        Inputs.CONFIG_SET: s.config_set,
    }
    return {name: value for name, value in values.items() if value}


def build(s: LaunchSettings, run_id: str, attempt: int, commit: Optional[str], written_at: str) -> Dict[str, Any]:
    return {
        SpecKey.RUN_ID: run_id,
        SpecKey.ATTEMPT: attempt,
        SpecKey.WRITTEN_AT: written_at,
        SpecKey.INPUTS: inputs_of(s),
        SpecKey.COMMIT: commit,
        SpecKey.MAX_RECOVERIES: s.max_recoveries,
        SpecKey.BUDGET_USD: s.budget_usd,
        SpecKey.AUTO_RESUME: s.auto_resume,
        SpecKey.STALL: {
            StallKey.MINUTES: s.stall_minutes,
            StallKey.GPU_UTIL_BELOW: s.stall_gpu_util,
            StallKey.GPU_WINDOW_MINUTES: s.stall_gpu_window_minutes,
            StallKey.ACTION: s.stall_action,
        },
    }


def write(paths: VolumePaths, spec: Dict[str, Any]) -> None:
    """Atomically, mode 600 (raises OSError)."""
    path = paths.spec_file(spec[SpecKey.RUN_ID])
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    record.write_json_atomic(path, spec, mode=0o600)


def read(paths: VolumePaths, run_id: Any) -> Optional[Dict[str, Any]]:
    """The run's spec, or None (no such run, an unsafe id, not a JSON object)."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        return None
    return record.load(paths.spec_file(run_id))


def relaunch_inputs(spec: Mapping[str, Any]) -> Dict[str, str]:
    """The RT_* environment that launches the spec's run again, attached to nobody: its inputs, its run
    id and commit (RT_REPO_COMMIT; autoresume.py pins the checkout to it), its limits and policies."""
    saved = spec.get(SpecKey.INPUTS)
    env = {str(k): str(v) for k, v in saved.items() if str(k).startswith("RT_")} if isinstance(saved, dict) else {}
    env.pop(Inputs.NOTIFY_URLS, None)  # never in a spec; notify.json stays as the last launch wrote it
    env[Inputs.RUN_ID] = str(spec.get(SpecKey.RUN_ID))
    env[Inputs.ACK_WAIT] = "0"
    if spec.get(SpecKey.COMMIT):
        env[Inputs.REPO_COMMIT] = str(spec[SpecKey.COMMIT])
    for key, name in ((SpecKey.MAX_RECOVERIES, Inputs.MAX_RECOVERIES), (SpecKey.BUDGET_USD, Inputs.BUDGET_USD)):
        if spec.get(key) is not None:
            env[name] = f"{spec[key]:g}" if isinstance(spec[key], float) else str(spec[key])
    env[Inputs.AUTO_RESUME] = "1" if spec.get(SpecKey.AUTO_RESUME, True) else "0"
    stall = spec.get(SpecKey.STALL) if isinstance(spec.get(SpecKey.STALL), dict) else {}
    for key, name in (
        (StallKey.MINUTES, Inputs.STALL_MINUTES),
        (StallKey.GPU_UTIL_BELOW, Inputs.STALL_GPU_UTIL),
        (StallKey.GPU_WINDOW_MINUTES, Inputs.STALL_GPU_WINDOW_MINUTES),
        (StallKey.ACTION, Inputs.STALL_ACTION),
    ):
        value = stall.get(key)  # type: ignore[union-attr]
        if value is not None:
            env[name] = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    return env


def record_run(s: LaunchSettings, spec: Dict[str, Any], program: str) -> None:
    """What a relaunch with nobody attached needs: the run's spec and .runner/podside-current.pyz naming
    this program (the pod's start command runs its autoresume). Best effort: a failure is a warning."""
    paths = s.paths
    for path, step in (
        (paths.spec_file(spec[SpecKey.RUN_ID]), lambda: write(paths, spec)),
        (paths.current_program, lambda: _point_current_program(paths, program)),
    ):
        try:
            step()
        except OSError as exc:
            sys.stderr.write(
                f"warning: could not write {path} ({exc.strerror}); the pod cannot resume this run itself\n"
            )


def record_notify(paths: VolumePaths, urls: Optional[List[str]]) -> None:
    """notify.json from RT_NOTIFY_URLS (None: unset, the file stays as it is; written only when it
    changes). Best effort: a failure is a warning."""
    if urls is None or notify.read_urls(paths.notify_file) == urls:
        return
    try:
        notify.write_urls(paths.notify_file, urls)
    except OSError as exc:
        sys.stderr.write(f"warning: could not write {paths.notify_file} ({exc.strerror}); no notifications\n")


def _point_current_program(paths: VolumePaths, program: str) -> None:
    if os.path.realpath(os.path.dirname(program)) != os.path.realpath(paths.volume_runner_dir):
        return  # a program run from elsewhere (by hand): not the volume's
    tmp = f"{paths.current_program}.{os.getpid()}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(os.path.basename(program), tmp)
    os.replace(tmp, paths.current_program)
