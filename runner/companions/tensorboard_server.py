"""TensorBoard on the pod, for `runner tensorboard` (runner/companions/tensorboard.py): one round trip
starts it in its own tmux session ("tensorboard") on the run's log directory, bound to 127.0.0.1, or
finds the one that already serves that directory. What the pod answers is data: checked before use.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from remote.podside.contract import VolumePaths, parse_json_object
from runner import timeouts
from runner.errors import TensorBoardError, UsageError
from runner.output import plain as _say
from runner.remote.ssh import SshConnection
from runner.types import Say

SESSION = "tensorboard"
REMOTE_PORT_START = 6006


@dataclass(frozen=True)
class BoardSource:
    """What to show: the directory on the pod, and the repo dir (for the venv's tensorboard)."""

    logdir: str
    repo_dir: str | None
    config: str


@dataclass(frozen=True)
class RemoteTensorBoard:
    logdir: str
    port: int
    executable: str
    status: str  # "started" | "already-running" | "restarted"


# One round trip: reuse a TensorBoard that already serves TB_LOGDIR, else (re)start it in tmux, wait
# until it listens, and print `TB_RESULT <json>` (or exit 3 = not installed, 4 = it died, 5 = too slow).
_START_SCRIPT = r"""
set -u
tb_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
tb_result() {
  python3 -c 'import json, sys; print("TB_RESULT " + json.dumps({"status": sys.argv[1], "port": int(sys.argv[2]), "executable": sys.argv[3], "logdir": sys.argv[4]}))' "$@"
}
S="=$TB_SESSION"
status=started
if tmux has-session -t "$S" 2>/dev/null; then
  # The port of the running TensorBoard if it serves TB_LOGDIR, else nothing.
  old_port=$(python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    if d.get("logdir") == sys.argv[2]:
        print(int(d["port"]))
except Exception:
    pass' "$TB_STATE" "$TB_LOGDIR" 2>/dev/null)
  if [ -n "$old_port" ] && tb_listening "$old_port"; then
    exe=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("executable", ""))' "$TB_STATE")
    tb_result already-running "$old_port" "$exe" "$TB_LOGDIR"
    exit 0
  fi
  echo "TB_NOTE restarting TensorBoard (it was not serving $TB_LOGDIR)"
  tmux kill-session -t "$S" 2>/dev/null
  status=restarted
fi
exe=
if [ -n "$TB_VENV_EXE" ] && [ -x "$TB_VENV_EXE" ]; then exe=$TB_VENV_EXE
else exe=$(command -v tensorboard 2>/dev/null) || exe=; fi
[ -n "$exe" ] || exit 3
port=$(python3 -c '
import socket, sys
start = int(sys.argv[1])
for port in range(start, start + 100):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break' "$TB_PORT_START" 2>/dev/null)
case $port in ''|*[!0-9]*) port=$TB_PORT_START ;; esac
[ -d "$TB_LOGDIR" ] || echo "TB_NOTE $TB_LOGDIR does not exist on the pod yet; TensorBoard shows data once training writes it"
mkdir -p -- "$(dirname -- "$TB_LOG")" "$(dirname -- "$TB_STATE")"
printf '===== %s starting %s on port %s for %s =====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$exe" "$port" "$TB_LOGDIR" >> "$TB_LOG"
cmd="exec $(printf '%q' "$exe") --logdir $(printf '%q' "$TB_LOGDIR") --host 127.0.0.1 --port $port >> $(printf '%q' "$TB_LOG") 2>&1"
tmux new-session -d -s "$TB_SESSION" "$cmd" || { echo "tmux new-session failed" >&2; exit 6; }
python3 -c 'import json, sys; json.dump({"port": int(sys.argv[1]), "logdir": sys.argv[2], "executable": sys.argv[3], "config": sys.argv[4]}, open(sys.argv[5], "w"))' \
  "$port" "$TB_LOGDIR" "$exe" "$TB_CONFIG" "$TB_STATE"
deadline=$((SECONDS + TB_WAIT))
until tb_listening "$port"; do
  tmux has-session -t "$S" 2>/dev/null || exit 4
  if [ "$SECONDS" -ge "$deadline" ]; then tmux kill-session -t "$S" 2>/dev/null; exit 5; fi
  sleep 0.2
done
tb_result "$status" "$port" "$exe" "$TB_LOGDIR"
"""


def _answer(data: dict[str, Any] | None) -> RemoteTensorBoard | None:
    """TB_RESULT's fields, checked: the pod's answer is data (a port in range, strings), else None."""
    if data is None:
        return None
    port, logdir, exe, status = (data.get(k) for k in ("port", "logdir", "executable", "status"))
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return None
    if not (isinstance(logdir, str) and isinstance(exe, str)) or status not in (
        "started",
        "already-running",
        "restarted",
    ):
        return None
    return RemoteTensorBoard(logdir, port, exe, status)


def stop_remote_tensorboard(conn: SshConnection, *, session: str | None = None) -> bool:
    session = session or SESSION
    return conn.run(f"tmux kill-session -t {shlex.quote('=' + session)} 2>/dev/null", timeout=30).ok


def _no_control_chars(value: str, what: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise UsageError(f"{what} {value!r} contains control characters; rename it.")
    return value


def start_remote_tensorboard(
    conn: SshConnection,
    target: BoardSource,
    paths: VolumePaths,
    *,
    session: str | None = None,
    say: Say = _say,
    timeout_s: float | None = None,
) -> RemoteTensorBoard:
    """TensorBoard on the pod for target.logdir, reusing one that already runs for it."""
    session = session or SESSION
    wait_s = timeouts.current().tensorboard_start_s if timeout_s is None else timeout_s
    venv_tb = str(PurePosixPath(target.repo_dir) / "venv" / "bin" / "tensorboard") if target.repo_dir else ""
    env = {
        "TB_SESSION": session,
        "TB_LOGDIR": _no_control_chars(target.logdir, "the log directory"),
        "TB_VENV_EXE": _no_control_chars(venv_tb, "the repo directory"),
        "TB_PORT_START": str(int(REMOTE_PORT_START)),
        "TB_LOG": _no_control_chars(paths.tensorboard_log, "the workspace"),
        "TB_STATE": paths.tensorboard_file,
        "TB_CONFIG": target.config,
        "TB_WAIT": str(int(wait_s)),
    }
    res = conn.run_script(_START_SCRIPT, env, timeout=wait_s + 60)
    for line in res.stdout.splitlines():
        if line.startswith("TB_NOTE "):
            say(line[len("TB_NOTE ") :])
    for line in reversed(res.stdout.splitlines()):
        if line.startswith("TB_RESULT ") and res.ok:
            found = _answer(parse_json_object(line[len("TB_RESULT ") :]))
            if found is None:
                raise TensorBoardError(f"the pod's answer to starting TensorBoard is not one: {line[:200]!r}")
            if found.status != "already-running":
                say(f"started TensorBoard on the pod ({found.executable}, port {found.port})")
            return found
    if res.exit_code == 3:
        where = f"{venv_tb} or " if venv_tb else ""
        pip = str(PurePosixPath(target.repo_dir) / "venv/bin/pip") if target.repo_dir else "pip"
        raise TensorBoardError(
            f"TensorBoard is not installed on the pod (looked for {where}`tensorboard` on PATH). Add "
            "`tensorboard` to the training repo's requirements.txt (the next `runner train` installs it into "
            f"the venv), or install it now: `python -m runner ssh`, then `{shlex.quote(pip)} install tensorboard`."
        )
    why = {4: "exited right after starting", 5: f"did not listen within {wait_s:g}s (stopped it again)"}.get(
        res.exit_code, f"could not be started (exit {res.exit_code}: {res.stderr.strip()})"
    )
    tail = conn.run(f"tail -n 15 -- {shlex.quote(paths.tensorboard_log)} 2>/dev/null", timeout=30).stdout.strip()
    raise TensorBoardError(
        f"TensorBoard on the pod {why}. Its output ({paths.tensorboard_log}):\n{tail or '(nothing)'}"
    )


__all__ = [
    "REMOTE_PORT_START",
    "SESSION",
    "BoardSource",
    "RemoteTensorBoard",
    "start_remote_tensorboard",
    "stop_remote_tensorboard",
]
