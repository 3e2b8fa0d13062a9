#!/usr/bin/env bash
# remote_train.sh: the pod side's shim. The runner streams it over SSH to bash's stdin, with
# `export NAME=<shlex-quoted value>` lines (the RT_* inputs) in front, so no value is on a command line.
#
# The work is done by a Python program (remote/podside/, standard library only, Python 3.8+) that
# remote/podside/bundle.py appends to this text: a zipapp, base64 in a quoted heredoc (rt_program),
# followed by the call `rt_main <content hash> </dev/null`. rt_main
#   1. finds the pod's python3 (else RT_PYTHON);
#   2. puts the program at <workspace>/.runner/podside-<hash>.pyz: decoded into a temp file in that
#      directory and renamed into place, or reused when that hash is already there. RT_ACTION=inspect
#      changes nothing on the volume: without a cached copy it runs one from a temp directory;
#   3. runs it: the program reads the RT_* inputs, checks them, launches (or inspects), and starts
#      `podside-<hash>.pyz supervise` in tmux. See docs/internals/pod-side.md.
# The short script (bundle.short_launcher_script(): the runner knows the program is on the volume) ends
# with `rt_cached <content hash>` instead and has no rt_program: it runs the cached program, or answers
# RT_NEED_PROGRAM (exit 86) so the runner sends the full script.
# Everything is in functions and the last line runs with stdin from /dev/null: bash has read the whole
# stream before anything runs, so no child can swallow the rest of it.

rt_die() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

# rt_unpack PYTHON DEST: the embedded program into DEST, atomically (temp file in DEST's dir + rename).
rt_unpack() {
  local tmp
  tmp=$(mktemp "$(dirname -- "$2")/.podside.XXXXXX") || return 1
  if rt_program | "$1" -c 'import base64, sys; sys.stdout.buffer.write(base64.b64decode(sys.stdin.buffer.read()))' \
    >"$tmp" && mv -f -- "$tmp" "$2"; then
    return 0
  fi
  rm -f -- "$tmp"
  return 1
}

# rt_keep_private NAME: a secret input leaves the environment before the program starts. RT_REPO_CREDENTIAL
# (the git credential the runner took out of an https REPO_URL) and RT_TRAIN_SECRETS (training's secrets,
# TRAIN_SECRETS) go into a private file each (a 0700 temp directory; printf is a builtin, so the value is
# on no command line, and the variable is unset before mktemp starts) whose path is exported as NAME_FILE;
# the program reads and deletes it (remote/podside/credential.py, trainsecrets.py).
rt_keep_private() {
  local name=$1 value dir
  value=${!name:-}
  [[ -n $value ]] || return 0
  unset "$name"
  dir=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/rt-private.XXXXXX") || rt_die "cannot create a private temp directory"
  (umask 077 && printf '%s' "$value" >"$dir/value") || rt_die "cannot write to $dir"
  export "${name}_FILE=$dir/value"
}

rt_keep_secrets() {
  rt_keep_private RT_REPO_CREDENTIAL
  rt_keep_private RT_TRAIN_SECRETS
}

rt_main() {
  local digest=$1 py runner pyz scratch rc
  rt_keep_secrets
  py=$(command -v python3 || command -v "${RT_PYTHON:-python3}") ||
    rt_die "python3 is not installed on the pod; use an image with Python 3"
  runner=${RT_WORKSPACE:-/workspace}/.runner
  pyz=$runner/podside-$digest.pyz
  if [[ $runner == /* && -f $pyz ]]; then
    exec "$py" "$pyz"
  fi
  if [[ ${RT_ACTION:-launch} == launch && $runner == /* ]] && mkdir -p -- "$runner" 2>/dev/null; then
    rt_unpack "$py" "$pyz" || rt_die "cannot write $pyz; is the network volume mounted and writable?"
    exec "$py" "$pyz"
  fi
  # inspect (or an input the program will reject): run a private copy, leave the volume untouched.
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/podside.XXXXXX") || rt_die "cannot create a temp directory"
  rt_unpack "$py" "$scratch/podside.pyz" || { rm -rf -- "$scratch"; rt_die "cannot unpack the pod-side program"; }
  "$py" "$scratch/podside.pyz"
  rc=$?
  rm -rf -- "$scratch"
  exit "$rc"
}

# rt_cached DIGEST: the short script's call (bundle.short_launcher_script(), no rt_program): run the
# program already on the volume; without it print `RT_NEED_PROGRAM <digest>` and exit 86, and the
# runner sends the full script (contract.NEED_PROGRAM_PREFIX / NEED_PROGRAM_EXIT).
rt_cached() {
  local py pyz
  rt_keep_secrets
  py=$(command -v python3 || command -v "${RT_PYTHON:-python3}") ||
    rt_die "python3 is not installed on the pod; use an image with Python 3"
  pyz=${RT_WORKSPACE:-/workspace}/.runner/podside-$1.pyz
  if [[ $pyz == /* && -f $pyz ]]; then
    exec "$py" "$pyz"
  fi
  printf 'RT_NEED_PROGRAM %s\n' "$1"
  exit 86
}

# (bundle.launcher_script() appends rt_program and the call of rt_main here.)
