#!/usr/bin/env bash
# The no-cloud demo, from a fresh clone on Debian/Ubuntu; no RunPod account needed.
#
#   bash scripts/demo.sh           # the whole pod flow on this machine (python -m standins.demo), ~15 s:
#                                  # the fake RunPod API on 127.0.0.1, a local sshd as the pod, the stub
#                                  # `pulumi` with the stack outputs, `runner train --config configs/demo.yaml`
#                                  # followed live, a spot preemption injected after the first checkpoint,
#                                  # the automatic recovery and resume, the pod stopping itself, the summary
#   bash scripts/demo.sh --local   # the train flow without a pod: `runner train --local` into .local-workspace/
#   bash scripts/demo.sh --keep    # (pod demo) keep its temp directory: workspace, log, run record
#
# Sets up what is missing first (tmux, git, openssh-server/-client, python3-venv via apt when run as
# root; a .venv with the project installed). The pod demo trains a throwaway repo with the smoke
# trainer; --local trains this checkout's committed code.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup-lib.sh

local_mode=0
if [ "${1:-}" = "--local" ]; then
  local_mode=1
  shift
fi

if [ "$local_mode" = 1 ]; then
  mapfile -t missing < <(missing_packages tmux=tmux git=git python3=python3)
else
  mapfile -t missing < <(missing_packages tmux=tmux git=git python3=python3 sshd=openssh-server ssh-keygen=openssh-client)
fi
need_packages demo "${missing[@]}"

if ! { [ -x .venv/bin/python ] && .venv/bin/python -c 'import runner.train, paramiko, yaml' >/dev/null 2>&1; }; then
  echo "demo: installing the project into .venv (pip install -e .)"
  ensure_venv
fi

if [ "$local_mode" = 0 ]; then
  exec .venv/bin/python -m standins.demo "$@"
fi

[ -d .git ] || { echo "demo: run --local from a git clone of the project (it trains its committed code)" >&2; exit 2; }
# --local: streams remote/remote_train.sh into `bash -s` here exactly as on a pod: it clones this
# checkout (committed content) into .local-workspace/, creates the training venv, starts the CPU
# smoke trainer in tmux, and the runner follows the log live and prints the summary. Run it twice:
# the second run resumes from the newest checkpoint.
echo "demo: TRAIN_SCRIPT=remote/smoke_train.py python -m runner train --local --config configs/smoke.yaml"
set +e
TRAIN_SCRIPT=remote/smoke_train.py .venv/bin/python -m runner train --local --config configs/smoke.yaml "$@"
code=$?
set -e
echo "demo: runner exited with $code (training's exit code). Workspace: .local-workspace/ (log: .local-workspace/logs/current.log)"
exit "$code"
