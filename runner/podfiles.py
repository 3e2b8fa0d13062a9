"""Shared helpers of the companion commands (sync, tensorboard, status, logs, ssh, ssh-config).

- where things live on the volume (PodPaths),
- giving the *system* ssh/rsync the host key the runner pinned with paramiko (known_hosts files),
  and reading that pin without paramiko (pinned_key_for_start),
- asking the pod what it is doing (`RT_ACTION=inspect` of remote/remote_train.sh),
- the end of the training log.
"""
from __future__ import annotations

import base64
import json
import os
import shlex
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

from remote.podside import bundle
from runner.settings import Settings
from runner.timestamps import parse_utc

if TYPE_CHECKING:
    from runner.ssh import SshConnection

# runner.ssh (paramiko, ~0.2 s to import) is imported only where a function needs it, so that a
# command which ends up using only the system ssh/rsync (runner sync's common case) never loads it.

LAUNCHER = Path(__file__).resolve().parents[1] / "remote" / "remote_train.sh"
TRAIN_SESSION = "train"          # RT_SESSION default of remote_train.sh


# ---------------------------------------------------------------- the volume's layout
@dataclass(frozen=True)
class PodPaths:
    """Paths on the pod under the stack's workspace (the network volume, /workspace)."""

    workspace: str

    def _join(self, *parts: str) -> str:
        return "/".join([self.workspace.rstrip("/") or "", *parts])

    @property
    def data(self) -> str:
        return self._join("data")

    @property
    def log(self) -> str:
        return self._join("logs", "current.log")

    @property
    def runner_dir(self) -> str:
        return self._join(".runner")

    @property
    def state_file(self) -> str:
        return self._join(".runner", "state.json")

    @property
    def tensorboard_file(self) -> str:
        return self._join(".runner", "tensorboard.json")

    @property
    def tensorboard_log(self) -> str:
        return self._join("logs", "tensorboard.log")

    def default_repo_dir(self, repo_url: str | None) -> str | None:
        """RT_REPO_DIR's default: <workspace>/<basename of the repo URL without .git>."""
        if not repo_url:
            return None
        name = repo_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if name.endswith(".git"):
            name = name[:-4]
        return self._join(name) if name else None


# ---------------------------------------------------------------- host keys for OpenSSH
def host_alias(settings: Settings) -> str:
    """The name the system ssh knows the pod by (Host / HostKeyAlias): runpod-<stack>."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in settings.stack)
    return f"runpod-{safe}"


def openssh_known_hosts_path(settings: Settings) -> Path:
    """An OpenSSH known_hosts file the runner rewrites from the pin (for `runner ssh` / ssh-config).

    (settings.paths.known_hosts is the runner's JSON pin store, not an OpenSSH file.)"""
    return settings.paths.stack_dir / "ssh_known_hosts"


class PublicKey(Protocol):
    """A host public key: runner.ssh.HostKey, or PinnedKey read from the pin store."""

    @property
    def key_type(self) -> str: ...

    @property
    def base64(self) -> str: ...


@dataclass(frozen=True)
class PinnedKey:
    key_type: str      # e.g. "ssh-ed25519"
    base64: str        # the key blob as in known_hosts



def pinned_key_for_start(settings: Settings, pin_id: str, started_at: str | None) -> PinnedKey | None:
    """The pinned host key of pin_id when it is the ONLY key the runner's paramiko policy would accept
    for a pod that started at `started_at`; None when paramiko must look at the server first.

    runner/hostkeys.py accepts a different key only if the API says the pod started after the pin was
    taken. So when a pin exists and the pod has not started again since, a system ssh with
    StrictHostKeyChecking=yes and exactly this key checks the same thing paramiko would, and the
    paramiko session can be skipped. No pin (first use), a newer start (a pod re-keys on every
    start), or a store we cannot read return None: the caller connects with paramiko, which pins,
    re-pins, or explains the problem. (Reads the store's JSON directly, documented in
    runner/hostkeys.py, because that module imports paramiko.)"""
    try:
        pins = json.loads(settings.paths.known_hosts.read_text()).get("pins")
        entry = pins.get(pin_id) if isinstance(pins, dict) else None
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(entry, dict):
        return None
    key_type, blob = entry.get("key_type"), entry.get("key")
    if not isinstance(key_type, str) or not isinstance(blob, str) or not key_type or not blob:
        return None
    new, old = parse_utc(started_at), parse_utc(entry.get("started_at"))
    if new is not None and old is not None and new > old:
        return None            # restarted since the pin: the key may legitimately have changed
    return PinnedKey(key_type, blob)


def known_hosts_line(alias: str, key: PublicKey) -> str:
    return f"{alias} {key.key_type} {key.base64}\n"


def write_known_hosts(path: Path, alias: str, key: PublicKey) -> Path:
    """Write (atomically, mode 0600) a known_hosts file holding only the pinned key under `alias`."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(known_hosts_line(alias, key))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def temporary_known_hosts(settings: Settings, alias: str, key: PublicKey) -> Iterator[Path]:
    """A throw-away known_hosts file (in the private state dir) for one ssh/rsync invocation."""
    directory = settings.paths.ensure().stack_dir
    fd, name = tempfile.mkstemp(dir=directory, prefix="known_hosts.", suffix=".tmp")
    path = Path(name)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(known_hosts_line(alias, key))
        yield path
    finally:
        path.unlink(missing_ok=True)


def host_key_algorithms(key_type: str) -> str | None:
    """HostKeyAlgorithms that make ssh ask for the pinned key's type (RSA keys sign with rsa-sha2-*)."""
    if key_type == "ssh-rsa":
        return "rsa-sha2-512,rsa-sha2-256,ssh-rsa"
    if key_type.startswith(("ssh-ed25519", "ecdsa-sha2-", "sk-")):
        return key_type
    return None


def openssh_options(
    *,
    key_path: Path | str,
    port: int,
    known_hosts: Path | str,
    alias: str,
    key_type: str,
    batch: bool = True,
) -> list[str]:
    """argv options for the system ssh: our key only, the pinned host key only, never a prompt.

    HostKeyAlias makes the check independent of the pod's address, which changes on every start."""
    opts = [
        "-i", str(key_path),
        "-p", str(int(port)),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"HostKeyAlias={alias}",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=4",
        "-o", "ConnectTimeout=20",
    ]
    algorithms = host_key_algorithms(key_type)
    if algorithms:
        opts += ["-o", f"HostKeyAlgorithms={algorithms}"]
    if batch:
        opts += ["-o", "BatchMode=yes"]
    return opts


# ---------------------------------------------------------------- what the pod is doing
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


def launcher_text() -> str:
    return bundle.launcher_script()


def inspect_pod(conn: SshConnection, paths: PodPaths, *, config: str | None = None,
                session: str | None = None, timeout: float = 60.0) -> PodInspect:
    """Ask the launcher (remote/remote_train.sh, RT_ACTION=inspect) what runs on the pod; starts nothing."""
    from runner.ssh import SshError

    session = session or TRAIN_SESSION
    env = {"RT_ACTION": "inspect", "RT_WORKSPACE": paths.workspace, "RT_SESSION": session}
    if config:
        env["RT_CONFIG"] = config
    result = conn.run_script(launcher_text(), env, timeout=timeout)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("RT_INSPECT "):
            try:
                data = json.loads(line[len("RT_INSPECT "):])
            except ValueError:
                break
            state = data.get("state") if isinstance(data.get("state"), dict) else None
            return PodInspect(
                state=state,
                session_running=bool(data.get("session_running")),
                output_dir=data.get("output_dir"),
                newest_checkpoint=data.get("newest_checkpoint"),
                skipped_checkpoints=list(data.get("skipped_checkpoints") or []),
                log=data.get("log") or paths.log,
                log_size=int(data.get("log_size") or 0),
            )
    detail = " ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
    raise SshError(f"the launcher's inspect mode gave no answer on the pod (exit {result.exit_code}: {detail})")


# ---------------------------------------------------------------- the log
@dataclass(frozen=True)
class LogTail:
    lines: list[bytes]       # whole lines, without their newline
    end_offset: int          # byte offset just after the last whole line: where following resumes


def tail_log(conn: SshConnection, path: str, n: int, *, timeout: float = 60.0) -> LogTail | None:
    """The last n whole lines of a remote file and the offset after them; None if it does not exist.

    A last line still being written (no newline yet) is left out and the offset stops before it,
    so a follower started at end_offset prints it once it is complete."""
    from runner.ssh import SshError

    q = shlex.quote(path)
    want = int(n) + 1          # one more: a partial last line is dropped below
    # base64: the text decoding of RunResult must not change byte counts (offsets are in bytes).
    res = conn.run(
        f"if [ ! -e {q} ]; then exit 44; fi; size=$(stat -c %s -- {q}) || exit 1; "
        f"echo \"$size\"; head -c \"$size\" -- {q} | tail -n {want} | base64 | tr -d '\\n'",
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
    except ValueError:
        raise SshError(f"unexpected answer while reading the end of {path} on the pod") from None
    end = size
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n")
        partial = data[cut + 1:]
        end -= len(partial)
        data = data[: cut + 1]
    lines = data.split(b"\n")[:-1] if data else []
    return LogTail(lines=lines[-n:] if n > 0 else [], end_offset=end)
