#!/usr/bin/env bash
# Sets up what the benchmarks need (like scripts/test.sh), then runs them on loopback.
# Usage: bash scripts/bench.sh [python -m bench args...]   e.g. --quick, --runs 3, --sshd-home machine
#        bash scripts/bench.sh s3 [python -m bench.s3 args...]   the volume without a pod: S3 vs rsync over SSH
#        bash scripts/bench.sh unattended [args...]   a preempted run with nobody attached; event -> notification
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup-lib.sh

mapfile -t missing < <(missing_packages sshd=openssh-server ssh=openssh-client tmux=tmux rsync=rsync git=git curl=curl strace=strace)
need_packages "the benchmarks" "${missing[@]}"
ensure_venv test
module=bench
if [ "${1:-}" = s3 ]; then module=bench.s3; shift; fi
if [ "${1:-}" = unattended ]; then module=bench.unattended; shift; fi
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} exec .venv/bin/python -m "$module" "$@"
