"""The launcher's inputs: the RT_* environment values, with their defaults, checked once.

A bad value raises InputError before anything is launched; __main__ prints it as `error: ...` on
stderr and exits 2. Nothing here starts a process except the `git check-ref-format` of a launch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Mapping, NamedTuple, Optional

from .contract import (
    DEFAULT_BRANCH,
    DEFAULT_MAX_RECOVERIES,
    DEFAULT_RP_ENV_FILE,
    DEFAULT_SESSION,
    DEFAULT_STALL_GPU_UTIL,
    DEFAULT_STALL_GPU_WINDOW_MINUTES,
    DEFAULT_STALL_MINUTES,
    DEFAULT_TRAIN_SCRIPT,
    DEFAULT_WORKSPACE,
    POD_SLOT_RE,
    RUN_ID_RE,
    SESSION_RE,
    Action,
    Inputs,
    StallAction,
    VolumePaths,
)
from .rpenvfile import read_env_file

LAUNCHERS = ("auto", "python", "torchrun", "accelerate")
_NO_NEWLINE = (
    Inputs.WORKSPACE,
    Inputs.REPO_URL,
    Inputs.REPO_BRANCH,
    Inputs.REPO_DIR,
    Inputs.CONFIG,
    Inputs.TRAIN_SCRIPT,
    Inputs.RUN_ID,
    Inputs.PYTHON,
    Inputs.RP_ENV_FILE,
)
_NUMBER_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class InputError(Exception):
    """A problem the user must fix; its text is one line that says what to do."""


class LaunchSettings(NamedTuple):
    """The checked inputs (a NamedTuple, not a dataclass: dataclasses imports inspect, ~8 ms of every
    launcher and supervisor start)."""

    action: str
    workspace: str
    repo_url: str
    branch: str
    repo_dir: str  # absolute, or "" when it cannot be known (inspect without state)
    code_source: str  # git | pushed
    config: str  # as given (relative to the repo, or absolute)
    train_script: str
    launcher: str  # as given: auto | python | torchrun | accelerate
    run_id: str  # "" = generate one
    stop_pod: bool
    session: str
    python: str
    rp_env_file: str
    ack_wait: float
    gpu_count_text: str  # RT_GPU_COUNT as given ("" = from RunPod's environment)
    idle_stop_minutes: float = 0.0  # RT_IDLE_STOP_MINUTES; 0: the launch starts no idle watcher
    commit: str = ""  # RT_REPO_COMMIT: the branch's full commit id as the runner saw it, or ""
    max_recoveries: int = DEFAULT_MAX_RECOVERIES  # RT_MAX_RECOVERIES: the pod's own relaunches of the run
    budget_usd: Optional[float] = None  # RT_BUDGET_USD (recorded in the spec; the runner enforces it)
    auto_resume: bool = True  # RT_AUTO_RESUME
    stall_minutes: float = DEFAULT_STALL_MINUTES  # RT_STALL_MINUTES; 0: no output check
    stall_gpu_util: float = DEFAULT_STALL_GPU_UTIL  # RT_STALL_GPU_UTIL, percent
    stall_gpu_window_minutes: float = DEFAULT_STALL_GPU_WINDOW_MINUTES  # RT_STALL_GPU_WINDOW_MINUTES; 0: no GPU check
    stall_action: str = StallAction.STOP.value  # RT_STALL_ACTION
    pin_commit: bool = False  # not an input: the auto-resume's relaunch checks out exactly `commit`
    pod_slot: str = ""  # RT_POD_SLOT: the pod's name in a stack of several ("": the first pod)
    shared_volume: bool = False  # RT_SHARED_VOLUME: the run's own checkout under runs/<id>/, a shared venv
    config_set: str = ""  # RT_CONFIG_SET as given: the config's overrides (derivedconfig.py)

    @property
    def paths(self) -> VolumePaths:
        return VolumePaths(self.workspace, self.pod_slot)


def read_settings(environ: Mapping[str, str]) -> LaunchSettings:
    """All inputs with their defaults, validated as far as both modes need (launch adds check_launch)."""

    def get(name: str, default: str = "") -> str:
        return environ.get(name) or default

    action = get(Inputs.ACTION, Action.LAUNCH.value)
    if action not in (Action.LAUNCH.value, Action.INSPECT.value):
        raise InputError(f"RT_ACTION must be 'launch' or 'inspect' (got '{action}')")
    for name in _NO_NEWLINE:
        if "\n" in get(name) or "\r" in get(name):
            raise InputError(f"{name} must not contain a line break")
    workspace, repo_url, repo_dir = get(Inputs.WORKSPACE, DEFAULT_WORKSPACE), get(Inputs.REPO_URL), get(Inputs.REPO_DIR)
    code_source, launcher, session, run_id = (
        get(Inputs.CODE_SOURCE, "git"),
        get(Inputs.LAUNCHER, "auto"),
        get(Inputs.SESSION, DEFAULT_SESSION),
        get(Inputs.RUN_ID),
    )
    if code_source not in ("git", "pushed"):
        raise InputError(f"RT_CODE_SOURCE must be 'git' or 'pushed' (got '{code_source}')")
    if launcher not in LAUNCHERS:
        raise InputError(f"RT_LAUNCHER must be auto, python, torchrun or accelerate (got '{launcher}')")
    stop = get(Inputs.STOP_POD, "1")
    if stop not in ("0", "1"):
        raise InputError(f"RT_STOP_POD must be 1 (stop the pod after training) or 0 (got '{stop}')")
    if not SESSION_RE.match(session):
        raise InputError(f"RT_SESSION must contain only letters, digits, '_' and '-' (got '{session}')")
    if run_id and not RUN_ID_RE.match(run_id):
        raise InputError(
            "RT_RUN_ID must be letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(at most 128; it names files on the volume)"
        )
    ack = _number(get(Inputs.ACK_WAIT, "0"), Inputs.ACK_WAIT, "a number of seconds")
    idle = _number(get(Inputs.IDLE_STOP_MINUTES, "0"), Inputs.IDLE_STOP_MINUTES, "a number of minutes, 0 for none")
    max_recoveries = get(Inputs.MAX_RECOVERIES, str(DEFAULT_MAX_RECOVERIES))
    if not max_recoveries.isdigit():
        raise InputError(f"RT_MAX_RECOVERIES must be a whole number, 0 for none (got '{max_recoveries}')")
    budget = get(Inputs.BUDGET_USD)
    auto_resume = get(Inputs.AUTO_RESUME, "1")
    if auto_resume not in ("0", "1"):
        raise InputError(f"RT_AUTO_RESUME must be 1 (the pod resumes an unfinished run) or 0 (got '{auto_resume}')")
    stall_action = get(Inputs.STALL_ACTION, StallAction.STOP.value)
    if stall_action not in {a.value for a in StallAction}:
        raise InputError(f"RT_STALL_ACTION must be 'stop' or 'notify' (got '{stall_action}')")
    commit = get(Inputs.REPO_COMMIT).strip().lower()
    if commit and not re.match(r"^([0-9a-f]{40}|[0-9a-f]{64})$", commit):
        raise InputError(
            f"RT_REPO_COMMIT must be a full commit id, 40 (or 64) hex digits as `git ls-remote` "
            f"prints it (got '{commit}'); leave it unset to fetch"
        )
    if not workspace.startswith("/"):
        raise InputError(f"RT_WORKSPACE must be an absolute path (got '{workspace}')")
    slot = get(Inputs.POD_SLOT)
    if slot and not POD_SLOT_RE.match(slot):
        raise InputError(f"RT_POD_SLOT must be lower-case letters, digits and '-', at most 32 (got '{slot}')")
    shared = get(Inputs.SHARED_VOLUME, "0")
    if shared not in ("0", "1"):
        raise InputError(f"RT_SHARED_VOLUME must be 1 (several pods share the volume) or 0 (got '{shared}')")
    if not repo_dir and repo_url:
        derived = VolumePaths(workspace).default_repo_dir(repo_url)
        if derived is None:
            raise InputError("cannot derive a directory name from RT_REPO_URL; set RT_REPO_DIR")
        repo_dir = derived
    if repo_dir and not repo_dir.startswith("/"):
        repo_dir = os.path.join(workspace, repo_dir)
    if shared == "1" and action == Action.LAUNCH.value:
        if not run_id:
            raise InputError("RT_RUN_ID is required with RT_SHARED_VOLUME=1: the run's checkout is named after it")
        if repo_dir:  # the run's own checkout: runs/<run id>/<repo name>
            repo_dir = os.path.join(VolumePaths(workspace).run_dir(run_id), os.path.basename(repo_dir.rstrip("/")))
    return LaunchSettings(
        action=action,
        workspace=workspace,
        repo_url=repo_url,
        branch=get(Inputs.REPO_BRANCH, DEFAULT_BRANCH),
        repo_dir=repo_dir,
        code_source=code_source,
        config=get(Inputs.CONFIG),
        train_script=get(Inputs.TRAIN_SCRIPT, DEFAULT_TRAIN_SCRIPT),
        launcher=launcher,
        run_id=run_id,
        stop_pod=stop == "1",
        session=session,
        python=get(Inputs.PYTHON, "python3"),
        rp_env_file=get(Inputs.RP_ENV_FILE, DEFAULT_RP_ENV_FILE),
        ack_wait=ack,
        gpu_count_text=get(Inputs.GPU_COUNT),
        idle_stop_minutes=idle,
        commit=commit,
        max_recoveries=int(max_recoveries),
        budget_usd=_number(budget, Inputs.BUDGET_USD, "a number of US dollars") if budget else None,
        auto_resume=auto_resume == "1",
        stall_minutes=_number(
            get(Inputs.STALL_MINUTES, f"{DEFAULT_STALL_MINUTES:g}"),
            Inputs.STALL_MINUTES,
            "a number of minutes, 0 for off",
        ),
        stall_gpu_util=_number(
            get(Inputs.STALL_GPU_UTIL, f"{DEFAULT_STALL_GPU_UTIL:g}"), Inputs.STALL_GPU_UTIL, "a percentage"
        ),
        stall_gpu_window_minutes=_number(
            get(Inputs.STALL_GPU_WINDOW_MINUTES, f"{DEFAULT_STALL_GPU_WINDOW_MINUTES:g}"),
            Inputs.STALL_GPU_WINDOW_MINUTES,
            "a number of minutes, 0 for off",
        ),
        stall_action=stall_action,
        pod_slot=slot,
        shared_volume=shared == "1",
        config_set=get(Inputs.CONFIG_SET),
    )


def _number(text: str, name: str, what: str) -> float:
    if not _NUMBER_RE.match(text):
        raise InputError(f"{name} must be {what} (got '{text}')")
    return float(text)


def check_launch(s: LaunchSettings) -> None:
    """What only a launch needs (inspect must work on a bare pod with nothing but the workspace)."""
    if not s.config:
        raise InputError(
            "RT_CONFIG is required: the training config, relative to the repo (e.g. configs/baseline.yaml)"
        )
    if s.code_source == "git" and not s.repo_url:
        raise InputError("RT_REPO_URL is required (the training repo to clone), or set RT_CODE_SOURCE=pushed")
    if not s.repo_dir:
        raise InputError("set RT_REPO_DIR (where the pushed code is) when RT_REPO_URL is not given")
    if s.config_set:
        from .derivedconfig import DerivedConfigError, parse

        try:
            parse(s.config_set)
        except DerivedConfigError as exc:
            raise InputError(str(exc)) from None
    if not shutil.which("tmux"):
        raise InputError(
            "tmux is not installed on the pod; install it (apt-get install -y tmux) or use an image that has it"
        )
    if not shutil.which(s.python):
        raise InputError(f"RT_PYTHON '{s.python}' was not found on the pod; point it at a Python 3 interpreter")
    if s.code_source == "git":
        if not shutil.which("git"):
            raise InputError("git is not installed on the pod; install it or use RT_CODE_SOURCE=pushed")
        ok = (
            subprocess.run(
                ["git", "check-ref-format", "--branch", s.branch],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).returncode
            == 0
        )
        if not ok:
            raise InputError(f"RT_REPO_BRANCH '{s.branch}' is not a valid git branch name")


def gpu_count(s: LaunchSettings, environ: Mapping[str, str]) -> int:
    """RT_GPU_COUNT, else RUNPOD_GPU_COUNT from the environment or RunPod's file, else 1."""
    text = s.gpu_count_text or environ.get("RUNPOD_GPU_COUNT") or ""
    if not text:
        text = (read_env_file(s.rp_env_file) or {}).get("RUNPOD_GPU_COUNT", "")
    text = text or "1"
    if not re.match(r"^[1-9][0-9]*$", text):
        raise InputError(f"the GPU count must be a positive integer (RT_GPU_COUNT / RUNPOD_GPU_COUNT is '{text}')")
    return int(text)


def launch_kind(launcher: str, gpus: int) -> str:
    if launcher == "auto":
        return "torchrun" if gpus > 1 else "python"
    return launcher


def under_repo(path: str, repo_dir: str) -> str:
    return path if path.startswith("/") else os.path.join(repo_dir, path)
