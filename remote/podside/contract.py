"""The runner–pod protocol, defined once: what the runner sends, what the pod writes, what it answers.

The runner (runner/), the pod-side program (remote/podside/), the tests and the benchmarks all use
these names, formats and parsers; nothing else spells an RT_* name, a result line, a log header or
footer, or a state.json key by hand. Standard library only: this module travels to the pod inside
the pod-side program and runs there under the image's python3.

    runner -> pod   RT_* environment values (Inputs) on the streamed launcher's stdin
    pod -> runner   one `RT_RESULT <json>` line (launch) or `RT_INSPECT <json>` line (inspect) as
                    the last stdout line; `error: ...` / `warning: ...` lines on stderr
    on the volume   <workspace>/logs/current.log with one Header and one Footer line per attempt
                    and `[remote_train] ...` notes (loglines.py, re-exported here);
                    <workspace>/.runner/state.json (StateKey, AttemptState: staterecord.py, re-exported
                    here); the other records under .runner/
                    (self_stop.json, idlewatch.json, the run's spec, hold.json, the event log,
                    notify.json: runfiles.py, re-exported here)
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import TYPE_CHECKING, Any, Dict, Optional

# The pod's other records under .runner/ (self_stop.json, idlewatch.json, the run's spec, hold, events,
# notify.json): defined in runfiles.py, re-exported here.
from .runfiles import *  # noqa: F403 (runfiles.__all__)

# state.json's keys and the attempt's states: defined in staterecord.py, re-exported here.
from .staterecord import TERMINAL_STATES as TERMINAL_STATES
from .staterecord import AttemptState as AttemptState
from .staterecord import StateKey as StateKey


class Inputs:
    """The RT_* environment variables the pod-side launcher reads (docs/internals/pod-side.md)."""

    ACTION = "RT_ACTION"  # launch (default) | inspect
    WORKSPACE = "RT_WORKSPACE"  # the network volume's mount (default /workspace)
    REPO_URL = "RT_REPO_URL"
    REPO_BRANCH = "RT_REPO_BRANCH"  # default main
    REPO_DIR = "RT_REPO_DIR"  # default <workspace>/<repo name>
    REPO_COMMIT = "RT_REPO_COMMIT"  # the branch's commit the runner's `git ls-remote` saw (skips a fetch)
    REPO_CREDENTIAL = "RT_REPO_CREDENTIAL"  # the user info the runner took out of an https REPO_URL
    REPO_CREDENTIAL_FILE = "RT_REPO_CREDENTIAL_FILE"  # where the shim put it (credential.py); never saved
    CODE_SOURCE = "RT_CODE_SOURCE"  # git | pushed
    CONFIG = "RT_CONFIG"  # relative to the repo root, or absolute
    TRAIN_SCRIPT = "RT_TRAIN_SCRIPT"  # default scripts/train.py
    LAUNCHER = "RT_LAUNCHER"  # auto | python | torchrun | accelerate
    GPU_COUNT = "RT_GPU_COUNT"
    RUN_ID = "RT_RUN_ID"
    STOP_POD = "RT_STOP_POD"  # 1 | 0
    SESSION = "RT_SESSION"  # tmux session name (default train)
    PYTHON = "RT_PYTHON"  # interpreter the venv is built from (default python3)
    RP_ENV_FILE = "RT_RP_ENV_FILE"  # RunPod's env file (default /etc/rp_environment)
    ACK_WAIT = "RT_ACK_WAIT"  # seconds the pod waits for the runner's ack before stopping
    IDLE_STOP_MINUTES = "RT_IDLE_STOP_MINUTES"  # the idle stop's time (idlewatch.py); unset/0: none
    IDLE_SSH_PORTS = "RT_IDLE_SSH_PORTS"  # ports whose connections count as a session (default: sshd's)
    # The run's limits and policies, kept in its spec for a relaunch with nobody attached (runfiles.py).
    MAX_RECOVERIES = "RT_MAX_RECOVERIES"  # attempts after the first the pod may start itself (default 3)
    BUDGET_USD = "RT_BUDGET_USD"  # the run's budget (recorded for the runner and watcher; unset: none)
    AUTO_RESUME = "RT_AUTO_RESUME"  # 1 (default) | 0: the pod resumes an unfinished run when it starts
    STALL_MINUTES = "RT_STALL_MINUTES"  # no output and no new checkpoint this long = a stall (0: off)
    STALL_GPU_UTIL = "RT_STALL_GPU_UTIL"  # GPU utilization % under which the GPU counts as idle
    STALL_GPU_WINDOW_MINUTES = "RT_STALL_GPU_WINDOW_MINUTES"  # ... for this long = a stall (0: off)
    STALL_ACTION = "RT_STALL_ACTION"  # stop (default) | notify
    NOTIFY_URLS = "RT_NOTIFY_URLS"  # a secret: written to notify.json, never passed on ("" = none)
    # Several pods on one volume (docs/guide/several-pods.md): the pod's own records, and a run layout
    # in which no two runs share a checkout, outputs or a log.
    POD_SLOT = "RT_POD_SLOT"  # the pod's name in its stack ("": the first pod, records where they always were)
    CONFIG_SET = "RT_CONFIG_SET"  # {key: value} JSON: the run trains a derived config (derivedconfig.py)
    SHARED_VOLUME = "RT_SHARED_VOLUME"  # 1: each run its own checkout (runs/<id>/), one venv per requirements
    # Training's secrets (TRAIN_SECRETS): a JSON object {name: value}; the shim moves it into a private
    # file (TRAIN_SECRETS_FILE); kept in the pod's train-secrets.json (VolumePaths.train_secrets) for training only (trainsecrets.py)
    TRAIN_SECRETS = "RT_TRAIN_SECRETS"
    TRAIN_SECRETS_FILE = "RT_TRAIN_SECRETS_FILE"

    ALL = tuple(value for name, value in list(locals().items()) if name.isupper())  # every name above
    # What a user (or a test) may set in the runner's environment; passed through to the launcher.
    # TMUX_TMPDIR gives the training its own tmux server (shared machines, tests).
    PASSTHROUGH = (LAUNCHER, PYTHON, GPU_COUNT, SESSION, RP_ENV_FILE, REPO_DIR, IDLE_SSH_PORTS, "TMUX_TMPDIR")


# What a run id may be: it names files on the volume (runs/<id>/, events/<id>.jsonl).
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# Values training itself gets in its environment (besides the venv and PYTHONPATH).
TRAINING_RUN_ID = "RT_RUN_ID"
TRAINING_ATTEMPT = "RT_ATTEMPT"


DEFAULT_SESSION = "train"
DEFAULT_BRANCH = "main"
DEFAULT_TRAIN_SCRIPT = "scripts/train.py"
DEFAULT_RP_ENV_FILE = "/etc/rp_environment"
SESSION_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class Action(str, Enum):
    LAUNCH = "launch"
    INSPECT = "inspect"


class LaunchStatus(str, Enum):
    STARTED = "started"
    ALREADY_RUNNING = "already-running"


# ---------------------------------------------------------------- where things live on the volume
# VolumePaths (each pod's records, each run's, the shared ones): volumepaths.py, re-exported here.
from .volumepaths import DEFAULT_WORKSPACE as DEFAULT_WORKSPACE  # noqa: E402
from .volumepaths import POD_SLOT_RE as POD_SLOT_RE  # noqa: E402
from .volumepaths import VolumePaths as VolumePaths  # noqa: E402


def ack_text(run_id: str, attempt: int) -> str:
    """What the runner writes to .runner/ack to confirm it read the attempt's end."""
    return f"{run_id} {attempt}"


VENV_REQUIREMENTS_MARKER = ".rt-requirements.sha256"  # <repo>/venv/<this>: cache key of the last good install


# ---------------------------------------------------------------- supervise.json (launcher -> supervisor)
class PlanKey:
    """Keys of <workspace>/.runner/supervise.json: what the launcher hands the supervisor it started
    (VolumePaths.supervisor_plan, mode 0600; handoff.py waits for the one carrying its token)."""

    ENV, WORKSPACE, REPO_DIR, CONFIG_PATH, OUTPUT_DIR = "env", "workspace", "repo_dir", "config_path", "output_dir"
    TRAIN_SCRIPT, LAUNCHER, GPU_COUNT = "train_script", "launcher", "gpu_count"
    RUN_ID, ATTEMPT, RESUME_FROM = "run_id", "attempt", "resume_from"
    STOP_POD, PYTHON, RP_ENV_FILE, ACK_WAIT, SESSION = "stop_pod", "python", "rp_env_file", "ack_wait", "session"
    TOKEN = "token"  # the launch token (handoff.py)
    STALL = "stall"  # the stall guard's settings: {StallKey: value}, as in the run's spec
    POD_SLOT = "pod_slot"  # VolumePaths.slot: whose records the supervisor writes ("" or missing: the first pod's)
    VENV = "venv"  # the shared venv's folder (RT_SHARED_VOLUME); missing: <repo>/venv


def parse_json_object(raw: Any) -> Optional[Dict[str, Any]]:
    """A JSON object from bytes/str, or None (empty, not JSON, not an object)."""
    if not raw:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------- answer lines (stdout, last line)
RESULT_PREFIX = "RT_RESULT "
INSPECT_PREFIX = "RT_INSPECT "
# The short launch script's answer when .runner/podside-<hash>.pyz is not on the volume (remote_train.sh
# rt_cached): this line on stdout and this exit status; the runner then sends the full script.
NEED_PROGRAM_PREFIX = "RT_NEED_PROGRAM "
NEED_PROGRAM_EXIT = 86
ERROR_PREFIX = "error: "
WARNING_PREFIX = "warning: "


class ResultKey:
    """Keys of the RT_RESULT object (launch)."""

    STATUS = "status"  # LaunchStatus
    RUN_ID, ATTEMPT, CONFIG, OUTPUT_DIR = "run_id", "attempt", "config", "output_dir"
    LOG, LOG_OFFSET, STATE_FILE, SESSION = "log", "log_offset", "state_file", "session"
    RESUME_FROM, SKIPPED_CHECKPOINTS = "resume_from", "skipped_checkpoints"
    REPO_DIR, COMMIT, LAUNCHER, GPU_COUNT = "repo_dir", "commit", "launcher", "gpu_count"
    STATE = "state"  # already-running: the state record's state


class InspectKey:
    """Keys of the RT_INSPECT object (RT_ACTION=inspect)."""

    STATE = "state"  # the state.json object, or null
    SESSION_RUNNING, SESSION, OUTPUT_DIR = "session_running", "session", "output_dir"
    NEWEST_CHECKPOINT, SKIPPED_CHECKPOINTS = "newest_checkpoint", "skipped_checkpoints"
    LOG, LOG_SIZE, NOTE, IDLE = "log", "log_size", "note", "idle"  # idle: idlewatch.json (IdleKey) or null


def format_answer(prefix: str, data: Dict[str, Any]) -> str:
    return prefix + json.dumps(data)


def find_answer(prefix: str, stdout: str) -> Optional[Dict[str, Any]]:
    """The object of the last `<prefix><json>` line of stdout, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(prefix):
            return parse_json_object(line[len(prefix) :])
    return None


def find_result(stdout: str) -> Optional[Dict[str, Any]]:
    return find_answer(RESULT_PREFIX, stdout)


def find_inspect(stdout: str) -> Optional[Dict[str, Any]]:
    return find_answer(INSPECT_PREFIX, stdout)


# ---------------------------------------------------------------- the log's header, footer and notes
# Defined in loglines.py and re-exported here, loaded on first use: the idle watcher (which ships
# contract.py without loglines.py) and inspect never need them.
_LOGLINES = (
    "NOTE_PREFIX",
    "SIGTERM_NOTE",
    "BANNER",
    "NONE",
    "Header",
    "Footer",
    "EndedNote",
    "is_launcher_line",
    "parse_footer",
    "parse_header",
    "parse_ended_note",
    "is_sigterm_note",
)
if TYPE_CHECKING:
    from .loglines import BANNER as BANNER
    from .loglines import NONE as NONE
    from .loglines import NOTE_PREFIX as NOTE_PREFIX
    from .loglines import SIGTERM_NOTE as SIGTERM_NOTE
    from .loglines import EndedNote as EndedNote
    from .loglines import Footer as Footer
    from .loglines import Header as Header
    from .loglines import is_launcher_line as is_launcher_line
    from .loglines import is_sigterm_note as is_sigterm_note
    from .loglines import parse_ended_note as parse_ended_note
    from .loglines import parse_footer as parse_footer
    from .loglines import parse_header as parse_header


def __getattr__(name: str) -> Any:
    if name in _LOGLINES:
        from . import loglines

        return getattr(loglines, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- checkpoints (HF Trainer layout)
CHECKPOINT_PREFIX = "checkpoint-"
_CHECKPOINT_STEP_RE = re.compile(r"checkpoint-(\d{1,15})/?$")


def checkpoint_step(path: Optional[str]) -> Optional[int]:
    """N of a .../checkpoint-N path, else None."""
    m = _CHECKPOINT_STEP_RE.search(path or "")
    return int(m.group(1)) if m else None
