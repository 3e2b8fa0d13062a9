"""The launcher's inputs: the RT_* environment values, with their defaults, checked once.

A bad value raises InputError before anything is launched; __main__ prints it as `error: ...` on
stderr and exits 2. Nothing here starts a process except the `git check-ref-format` of a launch.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from typing import Dict, Mapping, NamedTuple, Optional

from .contract import (
    DEFAULT_BRANCH,
    DEFAULT_RP_ENV_FILE,
    DEFAULT_SESSION,
    DEFAULT_TRAIN_SCRIPT,
    DEFAULT_WORKSPACE,
    SESSION_RE,
    Action,
    Inputs,
    VolumePaths,
)

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
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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

    @property
    def paths(self) -> VolumePaths:
        return VolumePaths(self.workspace)


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
    if run_id and re.search(r"\s", run_id):
        raise InputError("RT_RUN_ID must not contain whitespace")
    ack = get(Inputs.ACK_WAIT, "0")
    if not re.match(r"^[0-9]+(\.[0-9]+)?$", ack):
        raise InputError(f"RT_ACK_WAIT must be a number of seconds (got '{ack}')")
    idle = get(Inputs.IDLE_STOP_MINUTES, "0")
    if not re.match(r"^[0-9]+(\.[0-9]+)?$", idle):
        raise InputError(f"RT_IDLE_STOP_MINUTES must be a number of minutes, 0 for none (got '{idle}')")
    commit = get(Inputs.REPO_COMMIT).strip().lower()
    if commit and not re.match(r"^([0-9a-f]{40}|[0-9a-f]{64})$", commit):
        raise InputError(
            f"RT_REPO_COMMIT must be a full commit id, 40 (or 64) hex digits as `git ls-remote` "
            f"prints it (got '{commit}'); leave it unset to fetch"
        )
    if not workspace.startswith("/"):
        raise InputError(f"RT_WORKSPACE must be an absolute path (got '{workspace}')")
    if not repo_dir and repo_url:
        derived = VolumePaths(workspace).default_repo_dir(repo_url)
        if derived is None:
            raise InputError("cannot derive a directory name from RT_REPO_URL; set RT_REPO_DIR")
        repo_dir = derived
    if repo_dir and not repo_dir.startswith("/"):
        repo_dir = os.path.join(workspace, repo_dir)
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
        ack_wait=float(ack),
        gpu_count_text=get(Inputs.GPU_COUNT),
        idle_stop_minutes=float(idle),
        commit=commit,
    )


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


def read_env_file(path: str) -> Optional[Dict[str, str]]:
    """`export NAME=value` / `NAME=value` lines of RunPod's environment file (RT_RP_ENV_FILE), read
    with shell quoting rules but never run: nothing in the file is executed. None if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    values: Dict[str, str] = {}
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if words[:1] == ["export"]:
            words = words[1:]
        for word in words:
            name, sep, value = word.partition("=")
            if sep and _ENV_NAME_RE.match(name):
                values[name] = value
    return values


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
