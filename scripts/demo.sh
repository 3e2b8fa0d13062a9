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

. scripts/setup-lib.sh

mapfile -t missing < <(missing_packages tmux=tmux git=git python3=python3)
need_packages demo "${missing[@]}"
[ -d .git ] || { echo "demo: run this from a git clone of the project (the demo trains its committed code)" >&2; exit 2; }

if ! { [ -x .venv/bin/python ] && .venv/bin/python -c 'import runner.train, paramiko, yaml' >/dev/null 2>&1; }; then
  echo "demo: installing the project into .venv (pip install -e .)"
  ensure_venv
fi

echo "demo: TRAIN_SCRIPT=remote/smoke_train.py python -m runner train --local --config configs/smoke.yaml"
set +e
TRAIN_SCRIPT=remote/smoke_train.py .venv/bin/python -m runner train --local --config configs/smoke.yaml "$@"
code=$?
set -e
echo "demo: runner exited with $code (training's exit code). Workspace: .local-workspace/ (log: .local-workspace/logs/current.log)"
exit "$code"
