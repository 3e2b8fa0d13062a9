"""OpenSSH connection reuse for `runner sync`'s rsync: one control master per pod start, kept open
SSH_CONTROL_PERSIST seconds after its last use, so a repeated sync skips the SSH handshake
(OpenSSH's ControlMaster/ControlPersist, as SkyPilot's command runner uses it).

Where: <state dir>/<stack>/cm/ (mode 0700), one socket per pod start, named
`<pod id>-<digest>`; the digest covers the pod id, its start time, the endpoint, the user and the
pinned host key. A client that goes through a master does not look at the host key itself (the
master did, when it connected), so a pod that started again, which on RunPod means new host keys,
gets a new socket name and never an old master. When the path would be too long for a Unix socket
(OpenSSH adds a 17-character suffix while it creates one) there is no multiplexing at all.

The idle stop counts the master's connection as an SSH session (remote/podside/idlewatch.py), so a
master delays it by at most the persist time; a sync that stops the pod closes its masters first.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runner.settings import Settings
from runner.timestamps import parse_utc

SOCKET_PATH_MAX = 104  # sun_path: 108 bytes on Linux, 104 on macOS and the BSDs (with the NUL)
OPENSSH_SUFFIX = 17  # ssh binds "<ControlPath>.<16 random chars>" first, then renames it
DIRECTORY = "cm"


@dataclass(frozen=True)
class Master:
    path: Path  # the ControlPath socket
    persist_s: int

    @property
    def known_hosts(self) -> Path:
        """The pinned key for this master's start, kept as long as the master (it may check again on a rekey)."""
        return self.path.with_name(self.path.name + ".known_hosts")

    def options(self) -> list[str]:
        return ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.path}", "-o", f"ControlPersist={self.persist_s}s"]


def directory(settings: Settings) -> Path:
    return settings.paths.stack_dir / DIRECTORY


def _prefix(pod_id: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in pod_id)[:24] + "-"


def master_for(
    settings: Settings, pod_id: str, *, started_at: str | None, host: str, port: int, user: str, key_type: str, key: str
) -> Master | None:
    """The master for this pod start and pinned key; None when reuse is off (SSH_CONTROL_PERSIST=0)
    or the socket path would be too long."""
    persist = settings.ssh_control_persist_s
    if persist <= 0:
        return None
    start = parse_utc(started_at)
    ident = "\n".join(
        (pod_id, start.isoformat() if start else str(started_at), host, str(int(port)), user, key_type, key)
    )
    path = directory(settings) / (_prefix(pod_id) + hashlib.sha256(ident.encode()).hexdigest()[:16])
    if len(os.fsencode(path)) + OPENSSH_SUFFIX >= SOCKET_PATH_MAX:
        return None
    d = path.parent
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return Master(path, persist)


def close(path: Path) -> None:
    """Ask the master on `path` to exit (`ssh -O exit`); a stale socket or key file is removed."""
    if path.exists() or path.is_socket():
        try:
            subprocess.run(
                ["ssh", "-F", "/dev/null", "-o", f"ControlPath={path}", "-O", "exit", "runpod-pod"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=15,
            )
        except (OSError, subprocess.TimeoutExpired):
            pass
        path.unlink(missing_ok=True)
    path.with_name(path.name + ".known_hosts").unlink(missing_ok=True)


def close_pod_masters(settings: Settings, pod_id: str, *, keep: Path | None = None) -> None:
    """Close every master of this pod (but `keep`): before the pod is stopped, and after it started again."""
    d = directory(settings)
    try:
        names = os.listdir(d)
    except OSError:
        return
    prefix = _prefix(pod_id)
    for name in names:
        if not name.startswith(prefix):
            continue
        socket = d / name.removesuffix(".known_hosts")
        if socket == keep or "." in socket.name:
            continue  # the one to keep, or a socket ssh is still creating
        close(socket)  # a master, or the key file of one that is gone


def close_all(state_dir: Path) -> list[Path]:
    """Close every master under a state directory (all stacks); the paths it found."""
    found = [p for p in state_dir.glob(f"*/{DIRECTORY}/*") if p.is_socket()]
    for p in found:
        close(p)
    return found
