#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian/Ubuntu machine, then runs it.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-lib.sh

mapfile -t missing < <(missing_packages sshd=openssh-server ssh=openssh-client tmux=tmux rsync=rsync git=git)
need_packages "the tests" "${missing[@]}"
ensure_venv test
exec .venv/bin/python -m pytest "$@"
