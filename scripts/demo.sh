#!/usr/bin/env bash
# The no-cloud demo: the whole `runner train` flow on this machine, no RunPod account needed.
#
#   bash scripts/demo.sh            # from a fresh clone on Debian/Ubuntu
#
# Sets up what is missing (tmux, git, python3-venv via apt when run as root; a .venv with the
# project installed), then runs
#   TRAIN_SCRIPT=remote/smoke_train.py python -m runner train --local --config configs/smoke.yaml
# which streams remote/remote_train.sh into `bash -s` here exactly as it would on a pod: it clones
# this checkout (committed content) into .local-workspace/, creates the training venv, starts the
# CPU smoke trainer in tmux, and the runner follows the log live and prints the summary.
# Run it twice: the second run resumes from the newest checkpoint (nothing left to train at
# max_steps, so raise max_steps in configs/smoke.yaml and commit to see it continue).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "demo: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "demo: please install ${need_apt[*]} first, e.g.: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 2
  fi
fi
[ -d .git ] || { echo "demo: run this from a git clone of the project (the demo trains its committed code)" >&2; exit 2; }

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "demo: creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import runner.train, paramiko, yaml' >/dev/null 2>&1; then
  echo "demo: installing the project into .venv (pip install -e .)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi

echo "demo: TRAIN_SCRIPT=remote/smoke_train.py python -m runner train --local --config configs/smoke.yaml"
set +e
TRAIN_SCRIPT=remote/smoke_train.py .venv/bin/python -m runner train --local --config configs/smoke.yaml "$@"
code=$?
set -e
echo "demo: runner exited with $code (training's exit code). Workspace: .local-workspace/ (log: .local-workspace/logs/current.log)"
exit "$code"
