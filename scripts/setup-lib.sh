# Shared by scripts/test.sh, demo.sh and bench.sh (sourced, not run): install what is missing.

# need_packages WHAT PACKAGE... : install the missing Debian packages with apt when root,
# otherwise name them and exit 2. Call it with the packages whose commands are missing.
need_packages() {
  local what=$1
  shift
  [ $# -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "$what: installing $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "$what needs: $*. Install them, e.g.: sudo apt-get install -y $*" >&2
    exit 2
  fi
}

# missing_packages COMMAND=PACKAGE... : print the packages whose command is not on PATH.
missing_packages() {
  local pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%=*}" ] || printf '%s\n' "${pair#*=}"
  done
  # The venvs (ours, and the ones the launcher builds on the test "pod") need ensurepip.
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      printf '%s\n' python3-venv
      break
    fi
  done
}

# ensure_sdk1_wheel : the wheel of RunPod's SDK 1.12.0 (its GraphQL pod and GPU calls) in .venv/sdk-wheels/.
# The 1.x and 2.x lines share the package name `runpod`, so 1.x is not installed: the conformance test
# loads its request code from the wheel. Downloaded once, then reused offline.
SDK1_WHEEL=.venv/sdk-wheels/runpod-1.12.0-py3-none-any.whl
ensure_sdk1_wheel() {
  [ -f "$SDK1_WHEEL" ] || .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps \
    -d .venv/sdk-wheels runpod==1.12.0
}

# ensure_venv EXTRAS : .venv with the project and its stand-ins installed
# (pip install -e ".[EXTRAS]" -e ./standins: the stand-ins are a distribution of their own).
ensure_venv() {
  local spec=.
  [ -z "${1:-}" ] || spec=".[$1]"
  [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" -e ./standins
}
