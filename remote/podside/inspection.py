"""RT_ACTION=inspect: what the pod is doing, as one RT_INSPECT line. Starts, changes and stops
nothing; needs only RT_WORKSPACE, RT_SESSION and optionally RT_CONFIG."""

from __future__ import annotations

import os
from typing import Any, Dict

from . import checkpoints, configfile, idlewatch, record, tmuxsession
from .contract import INSPECT_PREFIX, InspectKey, StateKey, format_answer
from .inputs import LaunchSettings


def report(s: LaunchSettings) -> Dict[str, Any]:
    paths = s.paths
    state = record.load(paths.state_file)
    repo_dir = s.repo_dir or (state or {}).get(StateKey.REPO_DIR) or ""
    output_dir, note = None, None
    if s.config:
        config_path = s.config if s.config.startswith("/") or not repo_dir else os.path.join(repo_dir, s.config)
        if config_path.startswith("/") and os.path.isfile(config_path):
            try:
                output_dir = configfile.output_dir(config_path, repo_dir)
            except configfile.ConfigError:
                output_dir = None
        if not output_dir:
            note = f"could not read output_dir from {s.config} on the pod; using the state file's"
    if not output_dir:
        output_dir = (state or {}).get(StateKey.OUTPUT_DIR) or None
    newest, skipped = checkpoints.scan(output_dir) if output_dir else (None, [])
    try:
        log_size = os.path.getsize(paths.log)
    except OSError:
        log_size = 0
    return {
        InspectKey.STATE: state or None,
        InspectKey.SESSION_RUNNING: tmuxsession.status(s.session) == tmuxsession.RUNNING,
        InspectKey.OUTPUT_DIR: output_dir,
        InspectKey.NEWEST_CHECKPOINT: newest,
        InspectKey.SKIPPED_CHECKPOINTS: skipped,
        InspectKey.LOG: paths.log,
        InspectKey.LOG_SIZE: log_size,
        InspectKey.SESSION: s.session,
        InspectKey.NOTE: note,
        InspectKey.IDLE: idlewatch.status(paths),
    }


def inspect(s: LaunchSettings) -> int:
    print(format_answer(INSPECT_PREFIX, report(s)))
    return 0
