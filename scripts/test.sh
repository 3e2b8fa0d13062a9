#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian/Ubuntu machine, checks the format and the lint,
# type-checks backends/, runner/ and infra/, builds the docs site strictly (a broken page, link or anchor
# fails), then runs it.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-lib.sh

mapfile -t missing < <(missing_packages sshd=openssh-server ssh=openssh-client tmux=tmux rsync=rsync git=git strace=strace zsh=zsh fish=fish)
need_packages "the tests" "${missing[@]}"
ensure_venv test,tracker   # the tracker extra: the real wandb and mlflow clients
ensure_sdk1_wheel   # RunPod's SDK 1.x, for tests/conformance/test_runpod_sdk1.py (cannot sit beside 2.x)
.venv/bin/ruff format --check --quiet .   # the format ([tool.ruff] in pyproject.toml)
.venv/bin/ruff check --quiet .            # the lint
.venv/bin/python -m mypy   # the type check of backends/, runner/ and infra/ ([tool.mypy] in pyproject.toml)
docs_site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$docs_site"   # the docs (mkdocs.yml)
rm -rf "$docs_site"
exec .venv/bin/python -m pytest "$@"
