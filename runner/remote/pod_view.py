"""Asking the pod what it is doing (the launcher's RT_ACTION=inspect), and reading the log's end."""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass, field
from typing import Any

from remote.podside.bundle import launcher_script
from remote.podside.contract import DEFAULT_SESSION, Action, Inputs, InspectKey, VolumePaths, find_inspect
from runner.errors import SshError
from runner.remote.shell import READ_LIMIT
from runner.remote.shell import Shell as SshConnection

TRAIN_SESSION = DEFAULT_SESSION  # RT_SESSION of the training session (tests use their own)


@dataclass
class PodInspect:
    """The answer of `RT_ACTION=inspect` (remote_train.sh header, RT_ACTION=inspect)."""

    state: dict[str, Any] | None
    session_running: bool
    output_dir: str | None
    newest_checkpoint: str | None
    skipped_checkpoints: list[str] = field(default_factory=list)
    log: str | None = None
    log_size: int = 0
    idle: dict[str, Any] | None = None  # the idle stop's last check (IdleKey), or None


def inspect_pod(
    conn: SshConnection,
    paths: VolumePaths,
    *,
    config: str | None = None,
    session: str | None = None,
    timeout: float = 60.0,
    extra_env: dict[str, str] | None = None,
) -> PodInspect:
    """Ask the launcher (remote/remote_train.sh, RT_ACTION=inspect) what runs on the pod; starts nothing.
    extra_env: launcher knobs the launch had too (TMUX_TMPDIR: the tmux server to look in)."""
    session = session or TRAIN_SESSION
    env = {
        **(extra_env or {}),
        Inputs.ACTION: Action.INSPECT.value,
        Inputs.WORKSPACE: paths.workspace,
        Inputs.SESSION: session,
    }
    if paths.slot:  # a pod of several: its own state and log
        env[Inputs.POD_SLOT] = paths.slot
    if config:
        env[Inputs.CONFIG] = config
    result = conn.run_script(launcher_script(), env, timeout=timeout)
    data = find_inspect(result.stdout)
    if data is not None:
        state = data.get(InspectKey.STATE)
        return PodInspect(
            state=state if isinstance(state, dict) else None,
            session_running=bool(data.get(InspectKey.SESSION_RUNNING)),
            output_dir=data.get(InspectKey.OUTPUT_DIR),
            newest_checkpoint=data.get(InspectKey.NEWEST_CHECKPOINT),
            skipped_checkpoints=list(data.get(InspectKey.SKIPPED_CHECKPOINTS) or []),
            log=data.get(InspectKey.LOG) or paths.log,
            log_size=int(data.get(InspectKey.LOG_SIZE) or 0),
            idle=data.get(InspectKey.IDLE) if isinstance(data.get(InspectKey.IDLE), dict) else None,
        )
    detail = " ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
    raise SshError(f"the launcher's inspect mode gave no answer on the pod (exit {result.exit_code}: {detail})")


# ---------------------------------------------------------------- the log
@dataclass(frozen=True)
class LogTail:
    lines: list[bytes]  # whole lines, without their newline
    end_offset: int  # byte offset just after the last whole line: where following resumes


def tail_log(conn: SshConnection, path: str, n: int, *, timeout: float = 60.0) -> LogTail | None:
    """The last n whole lines of a remote file and the offset after them; None if it does not exist.

    A last line still being written (no newline yet) is left out and the offset stops before it,
    so a follower started at end_offset prints it once it is complete."""
    q = shlex.quote(path)
    want = int(n) + 1  # one more: a partial last line is dropped below
    # base64: the text decoding of RunResult must not change byte counts (offsets are in bytes).
    res = conn.run(
        f"if [ ! -e {q} ]; then exit 44; fi; size=$(stat -c %s -- {q}) || exit 1; "
        f'echo "$size"; head -c "$size" -- {q} | tail -n {want} | tail -c {READ_LIMIT} | base64 | tr -d \'\\n\'',
        timeout=timeout,
    )
    if res.exit_code == 44:
        return None
    if not res.ok:
        raise SshError(f"cannot read {path} on the pod: {res.stderr.strip() or f'exit {res.exit_code}'}")
    first, _, rest = res.stdout.partition("\n")
    try:
        size = int(first.strip())
        data = base64.b64decode(rest.strip(), validate=True)
        bounded = len(data) >= READ_LIMIT  # lines that long were cut at the bound: the first is partial
    except ValueError:
        raise SshError(f"unexpected answer while reading the end of {path} on the pod") from None
    end = size
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n")
        partial = data[cut + 1 :]
        end -= len(partial)
        data = data[: cut + 1]
    lines = data.split(b"\n")[:-1] if data else []
    if bounded and lines:
        lines = lines[1:]
    return LogTail(lines=lines[-n:] if n > 0 else [], end_offset=end)
