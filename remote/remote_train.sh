#!/usr/bin/env bash
# remote_train.sh — the pod-side launcher. Streamed over SSH and run as `bash -s`; the runner prepends
# `export NAME=<shlex-quoted value>` lines, so no input ever appears on a command line.
#
# What it does, in order (everything before "start tmux" fails fast with `error: ...` on stderr and a
# non-zero exit, BEFORE anything is launched; the pod is never stopped for an input error):
#   1. validates the inputs; if this project's tmux session is already running it starts nothing and
#      reports status "already-running" (the runner then attaches to the log at log_offset);
#   2. code: clones RT_REPO_URL into RT_REPO_DIR on the first run, fast-forwards it on later runs;
#      refuses (clear error, nothing touched) when the pod's checkout has uncommitted changes to
#      tracked files or has diverged from origin. RT_CODE_SOURCE=pushed skips git entirely;
#   3. reads output_dir from the --config YAML (relative = relative to the repo dir);
#   4. picks the newest COMPLETE checkpoint-N under output_dir (HF Trainer layout: trainer_state.json
#      parses and its global_step == N, and model weights are present); partial ones are reported;
#   5. appends one header line to the log, records state "setup" and starts a tmux session running
#      the supervisor (this same code, written to $RT_WORKSPACE/.runner/supervise.sh);
#   6. prints `RT_RESULT <json>` as its last stdout line and returns. The SSH session may now drop.
# The supervisor (inside tmux): creates the venv when missing, pip-installs requirements.txt only when
# it or the Python version changed since the last successful install, runs training (state
# "running"), records "succeeded"/"failed" + exit code, then stops the pod (unless RT_STOP_POD=0).
# On SIGTERM (spot preemption, ~5 s before SIGKILL) it forwards the signal to training, records
# "preempted" with the last complete checkpoint, and does NOT stop the pod.
#
# Inputs (environment variables):
#   RT_ACTION       launch (default) | inspect (report what the pod is doing; starts nothing)
#   RT_WORKSPACE    network volume mount (default /workspace)
#   RT_REPO_URL     training repo to clone (required unless RT_CODE_SOURCE=pushed)
#   RT_REPO_BRANCH  branch (default main)
#   RT_REPO_DIR     checkout dir (default $RT_WORKSPACE/<basename of RT_REPO_URL without .git>)
#   RT_CODE_SOURCE  git | pushed  (pushed: the runner already put the tree in RT_REPO_DIR)
#   RT_CONFIG       training config (required; relative to the repo dir, or absolute)
#   RT_TRAIN_SCRIPT training entry point (default scripts/train.py; takes --config and --resume)
#   RT_LAUNCHER     auto | python | torchrun | accelerate (auto: torchrun when RT_GPU_COUNT > 1)
#   RT_GPU_COUNT    GPUs to use (default RUNPOD_GPU_COUNT from the env or RT_RP_ENV_FILE, else 1)
#   RT_RUN_ID       run id (default generated); the same id again = next attempt of the same run
#   RT_STOP_POD     1 | 0 (default 1; 0 keeps the pod running after training, for debugging)
#   RT_SESSION      tmux session name (default train; letters, digits, _ and - only)
#   RT_PYTHON       interpreter the venv is created from (default python3)
#   RT_RP_ENV_FILE  RunPod's env file with RUNPOD_POD_ID / RUNPOD_API_KEY (default /etc/rp_environment)
#   RT_ACK_WAIT     seconds to wait, before stopping the pod, for "<run_id> <attempt>" in
#                   $RT_WORKSPACE/.runner/ack (an attached runner confirms it read the end; default 0)
#   RUNPOD_REST_URL REST base for the stop fallback (default https://api.runpod.io)
# Every other exported variable (PATH, HF_HOME, PIP_*, ...) is passed on to the supervisor/training.
# Training also gets PYTHONUNBUFFERED=1, the venv activated, the repo dir at the front of PYTHONPATH,
# HF_HOME defaulting to $RT_WORKSPACE/.cache/huggingface, and RT_RUN_ID / RT_ATTEMPT.
#
# Outputs:
#   stdout, last line: RT_RESULT {"status": "started"|"already-running", "run_id", "attempt", "log",
#     "log_offset", "resume_from", "state_file", + "session", "config", "output_dir", "repo_dir",
#     "commit", "launcher", "gpu_count", "skipped_checkpoints"}
#   errors: `error: <what to do>` on stderr, non-zero exit, no RT_RESULT line. Warnings: `warning: ...`.
#   RT_ACTION=inspect: last line `RT_INSPECT {"state": <state.json or null>, "session_running",
#     "output_dir" (from RT_CONFIG if given, else state.json), "newest_checkpoint",
#     "skipped_checkpoints", "log", "log_size", "session", "note"}`
#
# Left on the volume:
#   $RT_WORKSPACE/logs/current.log   appended; each attempt starts with one line
#       ===== <UTC time> run=<id> attempt=<n> config=<cfg> resume=<checkpoint or none> =====
#     followed by venv/pip output, training stdout+stderr and `[remote_train] ...` notes, and closed
#     (when the attempt ends; on preemption if the 5 s allow) by one line
#       ===== <UTC time> run=<id> attempt=<n> end state=<state> exit=<code|none> checkpoint=<path|none> =====
#   $RT_WORKSPACE/.runner/state.json  written atomically (tmp + mv):
#     {"run_id", "attempt", "state": "setup"|"running"|"succeeded"|"failed"|"preempted", "exit_code",
#      "config", "output_dir", "resume_from", "last_checkpoint", "started_at", "ended_at",
#      "log_offset", "stop_requested", + "session", "message", "stop_method", "supervisor_pid",
#      "train_pid", "commit", "launcher", "gpu_count", "repo_dir"}
#   $RT_WORKSPACE/.runner/supervise.sh  the generated supervisor (mode 600; contains the launch env)
#   $RT_WORKSPACE/.runner/launch.lock   serialises concurrent launches (flock, when available)
#   $RT_WORKSPACE/.runner/ack           written by the runner (RT_ACK_WAIT); removed at each launch
#   $RT_REPO_DIR/venv/                  the venv; venv/.rt-requirements.sha256 = last good install;
#                                       venv/.rt-python = interpreter files + version last checked
#   $RT_REPO_DIR/data -> $RT_WORKSPACE/data  a symlink to what `runner sync` uploaded, made when the
#                                       volume has data/ and the repo has no data/ of its own
#
# Needs on the pod: bash, coreutils, tmux >= 2.x, python3, git (unless pushed). Optional: flock,
# timeout, runpodctl, curl (else python urllib is used for the REST stop).
#
# All code lives in functions and the last line calls rt_main with stdin from /dev/null: bash has
# then read the whole script, so no child process can swallow the rest of it from stdin.

rt_die() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

rt_warn() { printf 'warning: %s\n' "$*" >&2; }

rt_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# Hide credentials embedded in a URL (https://user:token@host/...) before showing it.
rt_mask_url() { printf '%s' "$1" | sed -E 's#(://)[^/@]*@#\1***@#'; }

rt_has_newline() { case $1 in *$'\n'* | *$'\r'*) return 0 ;; esac; return 1; }

# -S: the helpers need only the standard library, and skipping site-packages makes each call fast.
rt_py() {
  "$RT_HELPER_PY" -S "$@"
}

# ---------------------------------------------------------------------------------------------------
# Python helpers (system python3; no third-party imports required)
# ---------------------------------------------------------------------------------------------------

# rt_json_tool MODE ARGS... ; MODE = new FILE k=v... [-- k=v...] | update FILE k=v... | result k=v... |
# running-result FILE k=v... | next-attempt FILE RUN_ID | get FILE KEY
# (new with `-- k=v...` also prints the RT_RESULT line made of those pairs: one Python start for both.)
rt_json_tool() {
  rt_py - "$@" <<'PY'
import json, os, sys

INT_KEYS = {"attempt", "exit_code", "log_offset", "supervisor_pid", "train_pid", "gpu_count", "log_size"}
BOOL_KEYS = {"stop_requested", "session_running"}
LIST_KEYS = {"skipped_checkpoints"}

def convert(key, value):
    if key in LIST_KEYS:
        return [line for line in value.split("\n") if line]
    if value == "":
        return None
    if key in INT_KEYS:
        return int(value)
    if key in BOOL_KEYS:
        return value in ("1", "true", "yes")
    return value

def pairs(args):
    out = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise SystemExit("internal error: bad key=value argument %r" % arg)
        out[key] = convert(key, value)
    return out

def load(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}

def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

mode, args = sys.argv[1], sys.argv[2:]
if mode == "new":
    cut = args.index("--") if "--" in args else len(args)
    write_atomic(args[0], pairs(args[1:cut]))
    if cut < len(args):
        print("RT_RESULT " + json.dumps(pairs(args[cut + 1:])))
elif mode == "update":
    data = load(args[0])
    data.update(pairs(args[1:]))
    write_atomic(args[0], data)
elif mode == "result":
    print("RT_RESULT " + json.dumps(pairs(args)))
elif mode == "running-result":
    state = load(args[0])
    result = {"status": "already-running"}
    for key in ("run_id", "attempt", "log_offset", "resume_from", "config", "output_dir",
                "repo_dir", "commit", "launcher", "gpu_count"):
        result[key] = state.get(key)
    result["state"] = state.get("state")
    result.update(pairs(args[1:]))
    print("RT_RESULT " + json.dumps(result))
elif mode == "inspect":
    state = load(args[0]) if os.path.exists(args[0]) else None
    result = {"state": state or None}
    result.update(pairs(args[1:]))
    print("RT_INSPECT " + json.dumps(result))
elif mode == "next-attempt":
    state = load(args[0])
    previous = state.get("attempt")
    same_run = state.get("run_id") == args[1] and isinstance(previous, int)
    print(previous + 1 if same_run else 1)
elif mode == "get":
    value = load(args[0]).get(args[1])
    print("" if value is None else value)
else:
    raise SystemExit("internal error: unknown mode %r" % mode)
PY
}

# rt_config_output_dir CONFIG REPO_DIR -> prints the absolute output_dir; exit 3 = clear error on stderr.
# Runs with site-packages so PyYAML is used when installed; otherwise a small top-level parser.
rt_config_output_dir() {
  "$RT_HELPER_PY" - "$1" "$2" <<'PY'
import os, re, sys

config_path, repo_dir = sys.argv[1], sys.argv[2]

def fallback_parse(text):
    """Top-level `key: scalar` lines only; enough to find output_dir without PyYAML."""
    data = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*:(?:\s+(.*))?$", line.rstrip())
        if not match:
            continue
        value = (match.group(2) or "").strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            value = value[1:end] if end > 0 else value[1:]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
            if value in ("", "~", "null", "Null", "NULL"):
                value = None
        data[match.group(1)] = value
    return data

try:
    with open(config_path, encoding="utf-8") as fh:
        text = fh.read()
except OSError as exc:
    sys.stderr.write("cannot read config %s: %s\n" % (config_path, exc.strerror))
    sys.exit(3)

try:
    import yaml
except ImportError:
    data = fallback_parse(text)
else:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        sys.stderr.write("config %s is not valid YAML: %s\n" % (config_path, str(exc).replace("\n", " ")))
        sys.exit(3)

if not isinstance(data, dict):
    sys.stderr.write("config %s is not a YAML mapping of key: value pairs\n" % config_path)
    sys.exit(3)
value = data.get("output_dir")
if not isinstance(value, str) or not value.strip():
    sys.stderr.write(
        "config %s has no top-level output_dir (a non-empty string); add a line such as "
        "'output_dir: checkpoints/<experiment>'\n" % config_path)
    sys.exit(3)
if "\n" in value or "\r" in value:
    sys.stderr.write("config %s: output_dir must not contain a line break\n" % config_path)
    sys.exit(3)
print(os.path.normpath(os.path.join(repo_dir, os.path.expanduser(value.strip()))))
PY
}

# rt_scan_checkpoints OUTPUT_DIR -> line 1: newest complete checkpoint path (or empty);
# further lines: "<name>: <why it was skipped>" for newer, incomplete ones.
rt_scan_checkpoints() {
  rt_py - "$1" <<'PY'
import json, os, re, sys

output_dir = sys.argv[1]
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

def problem(path, step):
    state_file = os.path.join(path, "trainer_state.json")
    if not os.path.isfile(state_file):
        return "trainer_state.json missing (killed mid-save?)"
    try:
        with open(state_file, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return "trainer_state.json unreadable or truncated"
    if not isinstance(state, dict) or state.get("global_step") != step:
        found = state.get("global_step") if isinstance(state, dict) else None
        return "trainer_state.json global_step %r does not match %d" % (found, step)
    if any(os.path.isfile(os.path.join(path, name)) for name in WEIGHTS):
        return None
    for index_name in INDEXES:
        index_file = os.path.join(path, index_name)
        if not os.path.isfile(index_file):
            continue
        try:
            with open(index_file, encoding="utf-8") as fh:
                shards = set(json.load(fh)["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "%s unreadable" % index_name
        missing = sorted(s for s in shards if not os.path.isfile(os.path.join(path, s)))
        if missing:
            return "weight shard %s missing" % missing[0]
        return None
    return "no model weights (model.safetensors, pytorch_model.bin, sharded index or adapter)"

try:
    names = os.listdir(output_dir)
except OSError:
    names = []
candidates = []
for name in names:
    match = re.fullmatch(r"checkpoint-(\d+)", name)
    if match and os.path.isdir(os.path.join(output_dir, name)):
        candidates.append((int(match.group(1)), name))
found, skipped = "", []
for step, name in sorted(candidates, reverse=True):
    path = os.path.join(output_dir, name)
    why = problem(path, step)
    if why is None:
        found = path
        break
    skipped.append("%s: %s" % (name, why))
print(found)
for line in skipped:
    print(line)
PY
}

# ---------------------------------------------------------------------------------------------------
# Launcher (runs in the SSH session)
# ---------------------------------------------------------------------------------------------------

rt_read_inputs() {
  RT_WORKSPACE=${RT_WORKSPACE:-/workspace}
  RT_REPO_URL=${RT_REPO_URL:-}
  RT_REPO_BRANCH=${RT_REPO_BRANCH:-main}
  RT_CODE_SOURCE=${RT_CODE_SOURCE:-git}
  RT_CONFIG=${RT_CONFIG:-}
  RT_TRAIN_SCRIPT=${RT_TRAIN_SCRIPT:-scripts/train.py}
  RT_LAUNCHER=${RT_LAUNCHER:-auto}
  RT_STOP_POD=${RT_STOP_POD:-1}
  RT_SESSION=${RT_SESSION:-train}
  RT_PYTHON=${RT_PYTHON:-python3}
  RT_RP_ENV_FILE=${RT_RP_ENV_FILE:-/etc/rp_environment}
  RT_RUN_ID=${RT_RUN_ID:-}
  RT_GPU_COUNT=${RT_GPU_COUNT:-}
  RT_REPO_DIR=${RT_REPO_DIR:-}
  RT_ACK_WAIT=${RT_ACK_WAIT:-0}

  local name
  for name in RT_WORKSPACE RT_REPO_URL RT_REPO_BRANCH RT_REPO_DIR RT_CONFIG RT_TRAIN_SCRIPT RT_RUN_ID \
    RT_PYTHON RT_RP_ENV_FILE; do
    if rt_has_newline "${!name}"; then rt_die "$name must not contain a line break"; fi
  done
  case $RT_CODE_SOURCE in git | pushed) ;; *) rt_die "RT_CODE_SOURCE must be 'git' or 'pushed' (got '$RT_CODE_SOURCE')" ;; esac
  case $RT_LAUNCHER in auto | python | torchrun | accelerate) ;;
    *) rt_die "RT_LAUNCHER must be auto, python, torchrun or accelerate (got '$RT_LAUNCHER')" ;;
  esac
  case $RT_STOP_POD in 0 | 1) ;; *) rt_die "RT_STOP_POD must be 1 (stop the pod after training) or 0 (got '$RT_STOP_POD')" ;; esac
  if [[ ! $RT_SESSION =~ ^[A-Za-z0-9_-]+$ ]]; then
    rt_die "RT_SESSION must contain only letters, digits, '_' and '-' (got '$RT_SESSION')"
  fi
  if [[ -n $RT_RUN_ID && $RT_RUN_ID =~ [[:space:]] ]]; then rt_die "RT_RUN_ID must not contain whitespace"; fi
  [[ $RT_ACK_WAIT =~ ^[0-9]+(\.[0-9]+)?$ ]] || rt_die "RT_ACK_WAIT must be a number of seconds (got '$RT_ACK_WAIT')"
  [[ $RT_WORKSPACE == /* ]] || rt_die "RT_WORKSPACE must be an absolute path (got '$RT_WORKSPACE')"

  if [[ -z $RT_REPO_DIR && -n $RT_REPO_URL ]]; then
    local base=${RT_REPO_URL%/}
    base=${base%.git}
    base=${base##*/}
    base=${base##*:}
    case $base in '' | . | ..) rt_die "cannot derive a directory name from RT_REPO_URL; set RT_REPO_DIR" ;; esac
    RT_REPO_DIR=$RT_WORKSPACE/$base
  fi
  [[ -z $RT_REPO_DIR || $RT_REPO_DIR == /* ]] || RT_REPO_DIR=$RT_WORKSPACE/$RT_REPO_DIR

  RT_HELPER_PY=$(command -v python3 || command -v "$RT_PYTHON" || true)
  [[ -n $RT_HELPER_PY ]] || rt_die "python3 is not installed on the pod; use an image with Python 3"
  RT_RUNNER_DIR=$RT_WORKSPACE/.runner
  RT_STATE_FILE=$RT_RUNNER_DIR/state.json
  RT_LOG=$RT_WORKSPACE/logs/current.log
}

# What only a launch needs (inspect must work on a bare pod with nothing but the workspace).
rt_check_launch_inputs() {
  [[ -n $RT_CONFIG ]] || rt_die "RT_CONFIG is required: the training config, relative to the repo (e.g. configs/baseline.yaml)"
  if [[ $RT_CODE_SOURCE == git && -z $RT_REPO_URL ]]; then
    rt_die "RT_REPO_URL is required (the training repo to clone), or set RT_CODE_SOURCE=pushed"
  fi
  [[ -n $RT_REPO_DIR ]] || rt_die "set RT_REPO_DIR (where the pushed code is) when RT_REPO_URL is not given"
  command -v tmux >/dev/null 2>&1 || rt_die "tmux is not installed on the pod; install it (apt-get install -y tmux) or use an image that has it"
  command -v "$RT_PYTHON" >/dev/null 2>&1 || rt_die "RT_PYTHON '$RT_PYTHON' was not found on the pod; point it at a Python 3 interpreter"
  if [[ $RT_CODE_SOURCE == git ]]; then
    command -v git >/dev/null 2>&1 || rt_die "git is not installed on the pod; install it or use RT_CODE_SOURCE=pushed"
    git check-ref-format --branch "$RT_REPO_BRANCH" >/dev/null 2>&1 ||
      rt_die "RT_REPO_BRANCH '$RT_REPO_BRANCH' is not a valid git branch name"
  fi
}

rt_gpu_count() {
  local count=${RT_GPU_COUNT:-${RUNPOD_GPU_COUNT:-}}
  if [[ -z $count && -r $RT_RP_ENV_FILE ]]; then
    count=$(set +u; set -a; . "$RT_RP_ENV_FILE" >/dev/null 2>&1; printf '%s' "${RUNPOD_GPU_COUNT:-}")
  fi
  count=${count:-1}
  [[ $count =~ ^[1-9][0-9]*$ ]] || rt_die "the GPU count must be a positive integer (RT_GPU_COUNT / RUNPOD_GPU_COUNT is '$count')"
  RT_GPU_COUNT=$count
}

rt_resolve_launcher() {
  RT_LAUNCH_KIND=$RT_LAUNCHER
  if [[ $RT_LAUNCH_KIND == auto ]]; then
    if ((RT_GPU_COUNT > 1)); then RT_LAUNCH_KIND=torchrun; else RT_LAUNCH_KIND=python; fi
  fi
}

# Prints running (our session is alive), none, finished (remain-on-exit kept a dead one) or foreign.
rt_session_status() {
  if ! command -v tmux >/dev/null 2>&1 || ! tmux has-session -t "=$RT_SESSION" 2>/dev/null; then
    echo none
    return
  fi
  local dead owner
  dead=$(tmux list-panes -t "=$RT_SESSION:" -F '#{pane_dead}' 2>/dev/null | sort -u)
  owner=$(tmux show-options -v -t "=$RT_SESSION:" @rt_owner 2>/dev/null || true)
  if [[ $owner != remote_train ]]; then
    echo foreign
  elif [[ $dead == 1 ]]; then
    echo finished
  else
    echo running
  fi
}

# Returns 0 when our session runs, 1 when there is none; dies when a foreign session has the name.
rt_session_running() {
  case $(rt_session_status) in
    running) return 0 ;;
    finished)
      tmux kill-session -t "=$RT_SESSION" 2>/dev/null
      return 1
      ;;
    foreign)
      rt_die "a tmux session named '$RT_SESSION' exists on the pod but was not started by remote_train.sh; close it (tmux kill-session -t $RT_SESSION) or choose another RT_SESSION"
      ;;
  esac
  return 1
}

rt_git() { GIT_TERMINAL_PROMPT=0 git -C "$RT_REPO_DIR" "$@"; }

rt_update_code() {
  RT_COMMIT=
  if [[ $RT_CODE_SOURCE == pushed ]]; then
    [[ -d $RT_REPO_DIR ]] || rt_die "RT_CODE_SOURCE=pushed but $RT_REPO_DIR does not exist; push the working tree there first"
    if [[ -e $RT_REPO_DIR/.git ]]; then RT_COMMIT=$(rt_git rev-parse --short HEAD 2>/dev/null || true); fi
    return 0
  fi
  local shown_url
  shown_url=$(rt_mask_url "$RT_REPO_URL")
  if [[ -e $RT_REPO_DIR && ! -e $RT_REPO_DIR/.git ]]; then
    if [[ -d $RT_REPO_DIR && -z $(ls -A "$RT_REPO_DIR" 2>/dev/null) ]]; then
      rmdir "$RT_REPO_DIR" 2>/dev/null || true
    else
      rt_die "$RT_REPO_DIR exists but is not a git checkout; move it away, set RT_REPO_DIR elsewhere, or use RT_CODE_SOURCE=pushed"
    fi
  fi
  if [[ ! -e $RT_REPO_DIR ]]; then
    mkdir -p "$(dirname "$RT_REPO_DIR")" || rt_die "cannot create $(dirname "$RT_REPO_DIR")"
    printf 'cloning %s (branch %s) into %s\n' "$shown_url" "$RT_REPO_BRANCH" "$RT_REPO_DIR" >&2
    GIT_TERMINAL_PROMPT=0 git clone --quiet --branch="$RT_REPO_BRANCH" -- "$RT_REPO_URL" "$RT_REPO_DIR" >&2 ||
      rt_die "git clone of $shown_url (branch $RT_REPO_BRANCH) failed; check REPO_URL/REPO_BRANCH and that the pod can read the repo (deploy key or token)"
    RT_COMMIT=$(rt_git rev-parse --short HEAD)
    return 0
  fi

  local dirty
  dirty=$(rt_git status --porcelain --untracked-files=no 2>&1) ||
    rt_die "git status failed in $RT_REPO_DIR: $dirty"
  if [[ -n $dirty ]]; then
    rt_die "the pod's checkout $RT_REPO_DIR has local changes to tracked files; nothing was updated or started. Changed: $(printf '%s' "$dirty" | head -n 5 | tr '\n' ' ')— commit and push them from the pod, or discard them (git -C '$RT_REPO_DIR' stash), then run again"
  fi
  if [[ $(rt_git remote get-url origin 2>/dev/null) != "$RT_REPO_URL" ]]; then
    rt_git remote set-url origin "$RT_REPO_URL" 2>/dev/null || rt_git remote add origin "$RT_REPO_URL" ||
      rt_die "cannot point origin of $RT_REPO_DIR at $shown_url"
  fi
  rt_git fetch --quiet origin "+refs/heads/$RT_REPO_BRANCH:refs/remotes/origin/$RT_REPO_BRANCH" >&2 ||
    rt_die "git fetch of branch $RT_REPO_BRANCH from $shown_url failed; check the branch exists and the pod can reach the repo"
  local current
  current=$(rt_git symbolic-ref -q --short HEAD || true)
  if [[ $current != "$RT_REPO_BRANCH" ]]; then
    if rt_git show-ref --verify --quiet "refs/heads/$RT_REPO_BRANCH"; then
      rt_git switch --quiet "$RT_REPO_BRANCH" >&2 ||
        rt_die "cannot switch $RT_REPO_DIR to branch $RT_REPO_BRANCH (untracked files in the way?); nothing was started"
    else
      rt_git switch --quiet --track -c "$RT_REPO_BRANCH" "refs/remotes/origin/$RT_REPO_BRANCH" >&2 ||
        rt_die "cannot switch $RT_REPO_DIR to branch $RT_REPO_BRANCH (untracked files in the way?); nothing was started"
    fi
  fi
  if ! rt_git merge --quiet --ff-only "refs/remotes/origin/$RT_REPO_BRANCH" >&2; then
    rt_die "the pod's branch $RT_REPO_BRANCH in $RT_REPO_DIR cannot be fast-forwarded to origin (it has commits made on the pod, or untracked files would be overwritten); nothing was changed. Push or reset them on the pod (git -C '$RT_REPO_DIR' log origin/$RT_REPO_BRANCH..HEAD), then run again"
  fi
  local ahead
  ahead=$(rt_git rev-list --count "refs/remotes/origin/$RT_REPO_BRANCH..HEAD" 2>/dev/null || echo 0)
  if [[ $ahead != 0 ]]; then
    rt_warn "the pod's branch $RT_REPO_BRANCH has $ahead commit(s) that are not on origin; they are kept and used"
  fi
  RT_COMMIT=$(rt_git rev-parse --short HEAD)
}

# `runner sync` uploads to $RT_WORKSPACE/data, while configs name their data relative to the repo
# (audio_dirs: [data/audio_0, ...]): link <repo>/data to it unless the repo has its own data/.
rt_link_data() {
  RT_DATA_LINK=
  [[ -d $RT_WORKSPACE/data ]] || return 0
  [[ -e $RT_REPO_DIR/data || -L $RT_REPO_DIR/data ]] && return 0
  ln -s -- "$RT_WORKSPACE/data" "$RT_REPO_DIR/data" && RT_DATA_LINK=$RT_REPO_DIR/data
}

rt_launch() {
  rt_check_launch_inputs
  unset TMUX TMUX_PANE

  mkdir -p "$RT_RUNNER_DIR" "$RT_WORKSPACE/logs" ||
    rt_die "cannot create $RT_RUNNER_DIR and $RT_WORKSPACE/logs; is the network volume mounted at $RT_WORKSPACE?"
  if command -v flock >/dev/null 2>&1; then
    exec 9>>"$RT_RUNNER_DIR/launch.lock" || rt_die "cannot open $RT_RUNNER_DIR/launch.lock"
    flock -w 120 9 || rt_die "another launch is still in progress on this pod (lock $RT_RUNNER_DIR/launch.lock); try again"
  fi

  if rt_session_running; then
    rt_json_tool running-result "$RT_STATE_FILE" "log=$RT_LOG" "state_file=$RT_STATE_FILE" "session=$RT_SESSION"
    return 0
  fi

  rt_update_code
  rt_link_data || rt_warn "could not link $RT_REPO_DIR/data to $RT_WORKSPACE/data"
  RT_TRAIN_SCRIPT_PATH=$RT_TRAIN_SCRIPT
  [[ $RT_TRAIN_SCRIPT_PATH == /* ]] || RT_TRAIN_SCRIPT_PATH=$RT_REPO_DIR/$RT_TRAIN_SCRIPT
  [[ -f $RT_TRAIN_SCRIPT_PATH ]] || rt_die "training script $RT_TRAIN_SCRIPT_PATH not found; set TRAIN_SCRIPT (RT_TRAIN_SCRIPT) to the entry point in your repo"

  RT_CONFIG_PATH=$RT_CONFIG
  [[ $RT_CONFIG_PATH == /* ]] || RT_CONFIG_PATH=$RT_REPO_DIR/$RT_CONFIG
  [[ -f $RT_CONFIG_PATH ]] || rt_die "config $RT_CONFIG not found (looked for $RT_CONFIG_PATH; --config is relative to the repo root); check the path and that it is committed/pushed"
  local out rc
  out=$(rt_config_output_dir "$RT_CONFIG_PATH" "$RT_REPO_DIR" 2>&1)
  rc=$?
  [[ $rc == 0 ]] || rt_die "${out:-could not read output_dir from $RT_CONFIG}"
  RT_OUTPUT_DIR=$out

  rt_gpu_count
  rt_resolve_launcher

  local scan
  scan=$(rt_scan_checkpoints "$RT_OUTPUT_DIR") || rt_die "could not scan $RT_OUTPUT_DIR for checkpoints"
  RT_RESUME_FROM=$(printf '%s\n' "$scan" | head -n 1)
  RT_SKIPPED=$(printf '%s\n' "$scan" | tail -n +2)

  [[ -n $RT_RUN_ID ]] || RT_RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)-$$
  RT_ATTEMPT=$(rt_json_tool next-attempt "$RT_STATE_FILE" "$RT_RUN_ID") || rt_die "cannot read $RT_STATE_FILE"

  rm -f -- "$RT_RUNNER_DIR/ack"
  touch "$RT_LOG" || rt_die "cannot write $RT_LOG"
  RT_LOG_OFFSET=$(wc -c <"$RT_LOG" | tr -d ' ')
  RT_STARTED_AT=$(rt_now)
  {
    printf '===== %s run=%s attempt=%s config=%s resume=%s =====\n' "$RT_STARTED_AT" "$RT_RUN_ID" \
      "$RT_ATTEMPT" "$RT_CONFIG" "${RT_RESUME_FROM:-none}"
    printf '[remote_train] code: %s%s in %s\n' "${RT_COMMIT:-pushed tree}" \
      "$([[ $RT_CODE_SOURCE == git ]] && printf ' (branch %s)' "$RT_REPO_BRANCH")" "$RT_REPO_DIR"
    printf '[remote_train] output_dir: %s; launcher: %s; GPUs: %s\n' "$RT_OUTPUT_DIR" "$RT_LAUNCH_KIND" "$RT_GPU_COUNT"
    [[ -z $RT_DATA_LINK ]] || printf '[remote_train] data: %s -> %s\n' "$RT_DATA_LINK" "$RT_WORKSPACE/data"
    if [[ -n $RT_SKIPPED ]]; then
      printf '%s\n' "$RT_SKIPPED" | sed 's/^/[remote_train] skipped incomplete checkpoint /'
    fi
  } >>"$RT_LOG"
  if [[ -n $RT_SKIPPED ]]; then
    printf '%s\n' "$RT_SKIPPED" | sed 's/^/warning: skipped incomplete checkpoint /' >&2
  fi

  # The RT_RESULT line is made now, with the state file (one Python start), and printed once the
  # supervisor runs.
  local result
  result=$(rt_json_tool new "$RT_STATE_FILE" "run_id=$RT_RUN_ID" "attempt=$RT_ATTEMPT" "state=setup" "exit_code=" \
    "config=$RT_CONFIG" "output_dir=$RT_OUTPUT_DIR" "resume_from=$RT_RESUME_FROM" \
    "last_checkpoint=$RT_RESUME_FROM" "started_at=$RT_STARTED_AT" "ended_at=" "log_offset=$RT_LOG_OFFSET" \
    "stop_requested=0" "session=$RT_SESSION" "message=" "stop_method=" "supervisor_pid=" "train_pid=" \
    "commit=$RT_COMMIT" "launcher=$RT_LAUNCH_KIND" "gpu_count=$RT_GPU_COUNT" "repo_dir=$RT_REPO_DIR" \
    -- "status=started" "run_id=$RT_RUN_ID" "attempt=$RT_ATTEMPT" "log=$RT_LOG" \
    "log_offset=$RT_LOG_OFFSET" "resume_from=$RT_RESUME_FROM" "state_file=$RT_STATE_FILE" \
    "session=$RT_SESSION" "config=$RT_CONFIG" "output_dir=$RT_OUTPUT_DIR" "repo_dir=$RT_REPO_DIR" \
    "commit=$RT_COMMIT" "launcher=$RT_LAUNCH_KIND" "gpu_count=$RT_GPU_COUNT" \
    "skipped_checkpoints=$RT_SKIPPED") && [[ $result == "RT_RESULT "* ]] ||
    rt_die "cannot write $RT_STATE_FILE"

  export RT_WORKSPACE RT_REPO_URL RT_REPO_BRANCH RT_REPO_DIR RT_CODE_SOURCE RT_CONFIG RT_TRAIN_SCRIPT \
    RT_LAUNCHER RT_GPU_COUNT RT_RUN_ID RT_STOP_POD RT_SESSION RT_PYTHON RT_RP_ENV_FILE RT_HELPER_PY \
    RT_RUNNER_DIR RT_STATE_FILE RT_LOG RT_CONFIG_PATH RT_OUTPUT_DIR RT_LAUNCH_KIND RT_RESUME_FROM \
    RT_ATTEMPT RT_TRAIN_SCRIPT_PATH RT_LOG_OFFSET RT_ACK_WAIT
  rt_write_supervisor || rt_die "cannot write $RT_RUNNER_DIR/supervise.sh"

  # The command string is constant and the path travels as the start directory: nothing to quote.
  if ! tmux new-session -d -s "$RT_SESSION" -c "$RT_RUNNER_DIR" 'exec bash ./supervise.sh' 9>&- >&2; then
    rt_json_tool update "$RT_STATE_FILE" "state=failed" "message=tmux new-session failed" "ended_at=$(rt_now)"
    rt_die "could not start tmux session '$RT_SESSION'; see the tmux error above"
  fi
  tmux set-option -t "=$RT_SESSION:" @rt_owner remote_train >/dev/null 2>&1 9>&- || true
  rt_await_supervisor
  printf '%s\n' "$result"
}

# RT_ACTION=inspect: report what the pod is doing; starts, changes and stops nothing.
rt_inspect() {
  local session_running=0 output_dir= scan= newest= skipped= log_size=0 note= repo_dir=$RT_REPO_DIR
  [[ $(rt_session_status) == running ]] && session_running=1
  [[ -n $repo_dir ]] || repo_dir=$(rt_json_tool get "$RT_STATE_FILE" repo_dir 2>/dev/null)
  if [[ -n $RT_CONFIG ]]; then
    local config_path=$RT_CONFIG
    [[ $config_path == /* || -z $repo_dir ]] || config_path=$repo_dir/$RT_CONFIG
    if [[ $config_path == /* && -f $config_path ]]; then
      output_dir=$(rt_config_output_dir "$config_path" "$repo_dir" 2>/dev/null) || output_dir=
    fi
    [[ -n $output_dir ]] || note="could not read output_dir from $RT_CONFIG on the pod; using the state file's"
  fi
  [[ -n $output_dir ]] || output_dir=$(rt_json_tool get "$RT_STATE_FILE" output_dir 2>/dev/null)
  if [[ -n $output_dir ]]; then
    scan=$(rt_scan_checkpoints "$output_dir" 2>/dev/null)
    newest=$(printf '%s\n' "$scan" | head -n 1)
    skipped=$(printf '%s\n' "$scan" | tail -n +2)
  fi
  [[ -f $RT_LOG ]] && log_size=$(wc -c <"$RT_LOG" | tr -d ' ')
  rt_json_tool inspect "$RT_STATE_FILE" "session_running=$session_running" "output_dir=$output_dir" \
    "newest_checkpoint=$newest" "skipped_checkpoints=$skipped" "log=$RT_LOG" "log_size=${log_size:-0}" \
    "session=$RT_SESSION" "note=$note"
}

# The supervisor records its pid within milliseconds; if it does not, it died before it could log.
rt_await_supervisor() {
  local i
  for ((i = 0; i < 300; i++)); do
    grep -q '"supervisor_pid": [0-9]' "$RT_STATE_FILE" 2>/dev/null && return 0
    sleep 0.05
  done
  rt_json_tool update "$RT_STATE_FILE" "state=failed" "ended_at=$(rt_now)" \
    "message=the supervisor in tmux session $RT_SESSION did not start"
  rt_die "the training supervisor did not start in tmux session '$RT_SESSION' (bash ./supervise.sh in $RT_RUNNER_DIR); run it by hand there to see why"
}

# The supervisor = every exported variable + every function of this script + a call to rt_supervise.
# declare -p / declare -f print re-readable, fully quoted bash, so hostile values survive unchanged.
rt_write_supervisor() {
  local target=$RT_RUNNER_DIR/supervise.sh tmp
  tmp=$target.tmp.$$
  (
    umask 077
    {
      printf '# Generated by remote_train.sh for run %s attempt %s. Do not edit; re-run the launcher.\n' \
        "$RT_RUN_ID" "$RT_ATTEMPT"
      local name
      for name in $(compgen -e); do
        # The pod key is never written to the volume; the stop reads it from RT_RP_ENV_FILE.
        case $name in PWD | OLDPWD | SHLVL | _ | TMUX | TMUX_PANE | BASHOPTS | SHELLOPTS | RUNPOD_API_KEY) continue ;; esac
        declare -p "$name"
      done
      declare -f
      printf 'set -o pipefail\nrt_supervise </dev/null\n'
    } >"$tmp"
  ) && mv -f "$tmp" "$target"
}

# ---------------------------------------------------------------------------------------------------
# Supervisor (runs inside tmux)
# ---------------------------------------------------------------------------------------------------

# Notes go to the log and to the tmux pane (stderr; stdout is reserved for values returned by $(...)).
rt_note() { printf '[remote_train] %s\n' "$*" >>"$RT_LOG"; printf '[remote_train] %s\n' "$*" >&2; }

rt_state() { rt_json_tool update "$RT_STATE_FILE" "$@" || rt_note "WARNING: could not update $RT_STATE_FILE"; }

# Children run in the background so signal traps fire at once (bash defers traps until a foreground
# command ends: a long pip install or training run would eat the 5 s preemption notice).
rt_start_child() {
  "$@" >>"$RT_LOG" 2>&1 </dev/null &
  RT_CHILD_PID=$!
}

rt_wait_child() {
  local rc
  while :; do
    wait "$RT_CHILD_PID"
    rc=$?
    kill -0 "$RT_CHILD_PID" 2>/dev/null || break
  done
  if ((rc > 128)); then
    # wait may have been cut short by a trap just as the child exited; bash kept the real status.
    wait "$RT_CHILD_PID" 2>/dev/null
    rc=$?
  fi
  RT_CHILD_PID=
  return "$rc"
}

rt_run_child() {
  rt_start_child "$@"
  rt_wait_child
}

rt_last_checkpoint() { rt_scan_checkpoints "$RT_OUTPUT_DIR" 2>/dev/null | head -n 1; }

# One line closing the attempt (see "Left on the volume" above); the runner's follower stops at it.
rt_footer() {
  printf '===== %s run=%s attempt=%s end state=%s exit=%s checkpoint=%s =====\n' "$(rt_now)" "$RT_RUN_ID" \
    "$RT_ATTEMPT" "$1" "${2:-none}" "${3:-none}" >>"$RT_LOG"
}

# Before stopping the pod, give an attached runner up to RT_ACK_WAIT s to confirm (by writing
# "<run_id> <attempt>" to .runner/ack) that it has read the end, so the pod does not vanish first.
rt_await_ack() {
  local whole=${RT_ACK_WAIT%.*} i ack=$RT_RUNNER_DIR/ack want="$RT_RUN_ID $RT_ATTEMPT"
  [[ $RT_ACK_WAIT == *.* && ${RT_ACK_WAIT#*.} =~ [1-9] ]] && whole=$((whole + 1))
  ((whole > 0)) || return 0
  rt_note "waiting up to ${RT_ACK_WAIT}s for the runner to confirm it has read the result"
  for ((i = 0; i < whole * 5; i++)); do
    if [[ -f $ack && $(<"$ack") == "$want" ]]; then
      rt_note "the runner confirmed"
      return 0
    fi
    sleep 0.2
  done
  rt_note "no confirmation from a runner within ${RT_ACK_WAIT}s; going on"
}

rt_on_term() {
  trap '' TERM HUP INT
  local child=${RT_CHILD_PID:-} last
  [[ -n $child ]] && kill -TERM "$child" 2>/dev/null
  last=$(rt_last_checkpoint)
  rt_state "state=preempted" "ended_at=$(rt_now)" "last_checkpoint=$last" \
    "message=SIGTERM received (spot preemption or container stop); the pod was not stopped by the launcher"
  rt_footer preempted "" "$last"
  rt_note "SIGTERM received: recorded state preempted; not stopping the pod"
  if [[ -n $child ]]; then
    local i
    for ((i = 0; i < 30; i++)); do
      kill -0 "$child" 2>/dev/null || break
      sleep 0.1
    done
  fi
  exit 143
}

rt_on_interrupt() {
  # tmux kill-session (SIGHUP) or Ctrl-C: end training; the normal exit path records it and stops the pod.
  RT_INTERRUPTED=1
  [[ -n ${RT_CHILD_PID:-} ]] && kill -TERM "$RT_CHILD_PID" 2>/dev/null
  rt_note "interrupted: asked training to stop"
}

# rt_requirements_hash PYTHON_VERSION REQUIREMENTS -> what a successful install is recorded under:
# sha256 of "<the venv's sys.version>\0<requirements.txt>" (the same digest earlier versions computed in Python).
rt_requirements_hash() {
  local out
  out=$({ printf '%s\0' "$1"; if [[ -e $2 ]]; then cat -- "$2"; else printf '<no requirements.txt>'; fi; } |
    sha256sum) || return 1
  printf '%s\n' "${out%% *}"
}

# rt_python_version PYTHON -> the first line of its sys.version (starts the interpreter).
rt_python_version() { "$1" -c 'import sys; print(sys.version)' 2>/dev/null | head -n 1; }

# rt_interpreter_id PYTHON VENV_PYTHON -> "<real path>|<size>|<mtime>" of both interpreter files, which
# changes when either is replaced (another image, an upgrade, a different RT_PYTHON). Fails when a file
# is missing or RT_PYTHON is a script: a shim or wrapper can switch interpreters without changing itself.
rt_interpreter_id() {
  local exe paths first magic=
  exe=$(command -v -- "$1") || return 1
  paths=$(readlink -e -- "$exe" "$2") || return 1
  first=${paths%%$'\n'*}
  IFS= read -r -n 2 magic <"$first" 2>/dev/null
  [[ $magic != '#!' ]] || return 1
  stat -c '%n|%s|%Y' -- "$first" "${paths#*$'\n'}" | tr '\n' ' '
}

# The venv's Python version is recorded in venv/.rt-python next to the identity of the interpreter
# files it was checked with; while they are unchanged a warm start starts no Python to check it.
rt_setup_venv() {
  local venv=$RT_REPO_DIR/venv want have= id= rec_id= rec_version= record=$RT_REPO_DIR/venv/.rt-python
  if [[ -f $record ]] && id=$(rt_interpreter_id "$RT_PYTHON" "$venv/bin/python") &&
    { IFS= read -r rec_id && IFS= read -r rec_version; } <"$record" 2>/dev/null &&
    [[ -n $id && $id == "$rec_id" && -n $rec_version ]]; then
    have=$rec_version
    rt_note "venv: same interpreter files as at the last check (Python ${have%% *}); not started to check"
  else
    want=$(rt_python_version "$RT_PYTHON")
    [[ -n $want ]] || { RT_FAIL_MESSAGE="RT_PYTHON '$RT_PYTHON' does not run"; return 1; }
    if [[ -d $venv ]]; then
      have=$(rt_python_version "$venv/bin/python")
      if [[ $have != "$want" ]]; then
        rt_note "venv: $venv does not work with $RT_PYTHON (${have:-broken}); recreating it"
        rm -rf -- "$venv"
        have=
      fi
    fi
    if [[ ! -d $venv ]]; then
      rt_note "venv: creating $venv with $RT_PYTHON"
      if ! rt_run_child "$RT_PYTHON" -m venv "$venv"; then
        RT_FAIL_MESSAGE="could not create the venv $venv (is python3-venv installed?)"
        rm -rf -- "$venv"
        return 1
      fi
      have=$(rt_python_version "$venv/bin/python")
      [[ -n $have ]] || { RT_FAIL_MESSAGE="the venv python $venv/bin/python does not run"; return 1; }
    fi
    # A cache: a torn or stale record only means the next start checks with Python again.
    if id=$(rt_interpreter_id "$RT_PYTHON" "$venv/bin/python") && [[ -n $id ]]; then
      printf '%s\n%s\n' "$id" "$have" >"$record" 2>/dev/null || true
    else
      rm -f -- "$record"
    fi
  fi
  local requirements=$RT_REPO_DIR/requirements.txt marker=$venv/.rt-requirements.sha256 hash
  hash=$(rt_requirements_hash "$have" "$requirements") ||
    { RT_FAIL_MESSAGE="cannot read $requirements"; return 1; }
  if [[ -f $marker && $(<"$marker") == "$hash" ]]; then
    rt_note "venv: requirements unchanged since the last install; nothing to install"
    return 0
  fi
  if [[ -f $requirements ]]; then
    rt_note "venv: requirements.txt or Python changed; running pip install -r requirements.txt"
    local rc
    rt_run_child "$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements"
    rc=$?
    if ((rc != 0)); then
      RT_FAIL_MESSAGE="pip install -r requirements.txt failed (exit $rc); see the pip output above"
      return "$rc"
    fi
  else
    rt_note "venv: no requirements.txt in $RT_REPO_DIR; nothing to install"
  fi
  printf '%s\n' "$hash" >"$marker.tmp" && mv -f "$marker.tmp" "$marker"
}

rt_build_command() {
  local resume=()
  [[ -n $RT_RESUME_FROM ]] && resume=(--resume "$RT_RESUME_FROM")
  case $RT_LAUNCH_KIND in
    python) RT_CMD=(python -u "$RT_TRAIN_SCRIPT_PATH") ;;
    torchrun)
      command -v torchrun >/dev/null 2>&1 || {
        RT_FAIL_MESSAGE="torchrun not found in the venv or on PATH; add torch to requirements.txt or set RT_LAUNCHER=python"
        return 1
      }
      RT_CMD=(torchrun --standalone "--nproc_per_node=$RT_GPU_COUNT" "$RT_TRAIN_SCRIPT_PATH")
      ;;
    accelerate)
      command -v accelerate >/dev/null 2>&1 || {
        RT_FAIL_MESSAGE="accelerate not found in the venv or on PATH; add accelerate to requirements.txt or pick another RT_LAUNCHER"
        return 1
      }
      RT_CMD=(accelerate launch "--num_processes=$RT_GPU_COUNT")
      ((RT_GPU_COUNT > 1)) && RT_CMD+=(--multi_gpu)
      RT_CMD+=("$RT_TRAIN_SCRIPT_PATH")
      ;;
  esac
  RT_CMD+=(--config "$RT_CONFIG_PATH" "${resume[@]}")
}

rt_finish() {
  local state=$1 code=$2
  trap '' TERM HUP INT
  local last
  last=$(rt_last_checkpoint)
  rt_note "training ended: state=$state exit_code=${code:-none} last_checkpoint=${last:-none}${RT_FAIL_MESSAGE:+ ($RT_FAIL_MESSAGE)}"
  sync 2>/dev/null
  if [[ $RT_STOP_POD != 1 ]]; then
    rt_note "RT_STOP_POD=0: leaving the pod running"
    rt_state "state=$state" "exit_code=$code" "ended_at=$(rt_now)" "last_checkpoint=$last" \
      "message=$RT_FAIL_MESSAGE" "train_pid=" "stop_requested=0"
    rt_footer "$state" "$code" "$last"
    exit "${code:-1}"
  fi
  # Recorded before the request: a successful stop kills this container right away.
  rt_state "state=$state" "exit_code=$code" "ended_at=$(rt_now)" "last_checkpoint=$last" \
    "message=$RT_FAIL_MESSAGE" "train_pid=" "stop_requested=1"
  rt_footer "$state" "$code" "$last"
  rt_await_ack
  local method
  if method=$(rt_stop_pod); then
    rt_state "stop_method=$method"
    rt_note "stop requested via $method"
  else
    rt_state "stop_requested=0" "stop_method=" \
      "message=${RT_FAIL_MESSAGE:+$RT_FAIL_MESSAGE; }could not stop the pod (see the log); it is still billing"
    rt_note "ERROR: could not stop the pod with runpodctl or the REST API; it keeps billing until stopped (python -m runner stop)"
  fi
  exit "${code:-1}"
}

# POST {"action":"stop"} to $RT_STOP_URL with the key from $RUNPOD_API_KEY (environment only).
rt_rest_stop_python() {
  "$RT_HELPER_PY" -S - <<'PY'
import os, sys, time, urllib.error, urllib.request
url, key = os.environ["RT_STOP_URL"], os.environ["RUNPOD_API_KEY"]
for attempt in range(3):
    request = urllib.request.Request(url, data=b'{"action":"stop"}', method="POST", headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            sys.exit(0)
    except urllib.error.HTTPError as exc:
        print("stop: REST v2 answered HTTP %d" % exc.code)
        if exc.code < 500 and exc.code != 429:
            sys.exit(1)
    except (urllib.error.URLError, OSError) as exc:
        print("stop: REST v2 request failed: %s" % getattr(exc, "reason", exc))
    time.sleep(2)
sys.exit(1)
PY
}

# Prints the method that worked. Runs in a subshell so the pod's API key never enters the
# supervisor's (or training's) environment; the key is passed via env/stdin, never argv.
rt_stop_pod() {
  (
    set +u
    rest_base=${RUNPOD_REST_URL:-}
    if [[ -r $RT_RP_ENV_FILE ]]; then
      set -a
      . "$RT_RP_ENV_FILE" >/dev/null 2>&1
      set +a
    else
      rt_note "stop: $RT_RP_ENV_FILE not readable; using RUNPOD_POD_ID/RUNPOD_API_KEY from the environment"
    fi
    rest_base=${rest_base:-${RUNPOD_REST_URL:-https://api.runpod.io}}
    [[ -n ${RUNPOD_API_KEY:-} ]] && export RUNPOD_API_KEY
    pod=${RUNPOD_POD_ID:-}
    if [[ ! $pod =~ ^[A-Za-z0-9_-]+$ ]]; then
      rt_note "stop: RUNPOD_POD_ID is missing or malformed; cannot stop the pod"
      exit 1
    fi
    to=()
    command -v timeout >/dev/null 2>&1 && to=(timeout 60)
    if command -v runpodctl >/dev/null 2>&1; then
      if "${to[@]}" runpodctl pod stop "$pod" >>"$RT_LOG" 2>&1; then printf 'runpodctl pod stop'; exit 0; fi
      rt_note "stop: 'runpodctl pod stop' failed; trying the older 'runpodctl stop pod'"
      if "${to[@]}" runpodctl stop pod "$pod" >>"$RT_LOG" 2>&1; then printf 'runpodctl stop pod'; exit 0; fi
      rt_note "stop: runpodctl failed; trying the REST API"
    else
      rt_note "stop: runpodctl not installed; using the REST API"
    fi
    if [[ -z ${RUNPOD_API_KEY:-} ]]; then
      rt_note "stop: RUNPOD_API_KEY is not set (not in $RT_RP_ENV_FILE either); cannot call the REST API"
      exit 1
    fi
    url=${rest_base%/}/v2/pods/$pod/action
    export RT_STOP_URL=$url RUNPOD_API_KEY
    if command -v curl >/dev/null 2>&1; then
      esc_key=${RUNPOD_API_KEY//\\/\\\\}
      esc_key=${esc_key//\"/\\\"}
      esc_url=${url//\\/\\\\}
      esc_url=${esc_url//\"/\\\"}
      if printf 'url = "%s"\nheader = "Authorization: Bearer %s"\n' "$esc_url" "$esc_key" |
        curl -sS -f -K - -X POST -H 'Content-Type: application/json' --data '{"action":"stop"}' \
          --connect-timeout 10 --max-time 30 --retry 3 --retry-delay 2 -o /dev/null >>"$RT_LOG" 2>&1; then
        printf 'REST v2 (curl)'
        exit 0
      fi
      rt_note "stop: REST v2 stop via curl failed"
      exit 1
    fi
    if rt_rest_stop_python >>"$RT_LOG" 2>&1; then
      printf 'REST v2 (python)'
      exit 0
    fi
    rt_note "stop: REST v2 stop via python failed"
    exit 1
  )
}

rt_supervise() {
  RT_CHILD_PID=
  RT_FAIL_MESSAGE=
  RT_INTERRUPTED=0
  # Training and pip never see the pod's key (it may reach us through the tmux server's environment).
  export -n RUNPOD_API_KEY 2>/dev/null
  trap rt_on_term TERM
  trap rt_on_interrupt HUP INT
  rt_state "supervisor_pid=$$"
  cd "$RT_REPO_DIR" || {
    RT_FAIL_MESSAGE="repo dir $RT_REPO_DIR vanished"
    rt_finish failed 1
  }
  printf '[remote_train] run %s attempt %s; full output: tail -f %q\n' "$RT_RUN_ID" "$RT_ATTEMPT" "$RT_LOG"

  local rc
  rt_setup_venv
  rc=$?
  if ((rc != 0)); then
    rt_finish failed "$rc"
  fi
  if ((RT_INTERRUPTED)); then
    RT_FAIL_MESSAGE="interrupted during setup"
    rt_finish failed 130
  fi

  export VIRTUAL_ENV=$RT_REPO_DIR/venv
  export PATH=$VIRTUAL_ENV/bin:$PATH
  export PYTHONUNBUFFERED=1
  export PYTHONPATH=$RT_REPO_DIR${PYTHONPATH:+:$PYTHONPATH}
  export HF_HOME=${HF_HOME:-$RT_WORKSPACE/.cache/huggingface}
  unset PYTHONHOME

  rt_build_command || rt_finish failed 1
  rt_note "running:$(printf ' %q' "${RT_CMD[@]}")"
  rt_start_child "${RT_CMD[@]}"
  rt_state "state=running" "train_pid=$RT_CHILD_PID"
  rt_wait_child
  rc=$?
  if ((rc == 0)); then
    rt_finish succeeded 0
  fi
  RT_FAIL_MESSAGE="training exited with code $rc"
  rt_finish failed "$rc"
}

rt_main() {
  set -u -o pipefail
  local action=${RT_ACTION:-launch}
  case $action in
    launch | inspect) ;;
    *) rt_die "RT_ACTION must be 'launch' or 'inspect' (got '$action')" ;;
  esac
  rt_read_inputs
  if [[ $action == inspect ]]; then rt_inspect; else rt_launch; fi
}

rt_main </dev/null
