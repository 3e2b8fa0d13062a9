"""The system's OpenSSH (ssh, rsync, VS Code) to the pod, with the host key the runner pinned.

Giving the *system* ssh/rsync the host key the runner pinned with paramiko (known_hosts files and
options), and reading that pin without paramiko (pinned_key_for_start), so that `runner sync`'s
common case never loads paramiko.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from backends.ssh_endpoint import endpoint_problem
from runner.settings import Settings
from runner.timestamps import parse_utc

if TYPE_CHECKING:
    pass

# runner.remote.ssh (paramiko, ~0.2 s to import) is imported only where a function needs it, so that a
# command which ends up using only the system ssh/rsync (runner sync's common case) never loads it.


def host_alias(settings: Settings) -> str:
    """The name the system ssh knows the pod by (Host / HostKeyAlias): runpod-<stack>."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in settings.stack)
    return f"runpod-{safe}"


def openssh_known_hosts_path(settings: Settings) -> Path:
    """An OpenSSH known_hosts file the runner rewrites from the pin (for `runner ssh` / ssh-config).

    (settings.paths.known_hosts is the runner's JSON pin store, not an OpenSSH file.)"""
    return settings.paths.pod_dir / "ssh_known_hosts"


class PublicKey(Protocol):
    """A host public key: runner.ssh.HostKey, or PinnedKey read from the pin store."""

    @property
    def key_type(self) -> str: ...

    @property
    def base64(self) -> str: ...


@dataclass(frozen=True)
class PinnedKey:
    key_type: str  # e.g. "ssh-ed25519"
    base64: str  # the key blob as in known_hosts


@dataclass(frozen=True)
class PinEntry:
    """One pin of the store, read without paramiko: the key, the pod start it was pinned for, and
    where the pod answered with it ("" / 0 when the pin does not say)."""

    key: PinnedKey
    started_at: str | None
    host: str = ""
    port: int = 0


def read_pin(settings: Settings, pin_id: str) -> PinEntry | None:
    """The pin of pin_id, or None (no pin, or a store we cannot read: paramiko will say why). Reads the
    store's JSON, documented in runner/remote/hostkeys.py, without its lock: a read-only look at a file
    that is replaced atomically."""
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
    started = entry.get("started_at")
    host, _, port = str(entry.get("endpoint") or "").rpartition(":")
    if host and endpoint_problem(host.strip("[]"), int(port) if port.isdigit() else 0, "root") is not None:
        host, port = "", ""  # not a plain endpoint (a hand-edited or damaged pin): ask the API instead
    return PinEntry(
        PinnedKey(key_type, blob),
        started if isinstance(started, str) else None,
        host,
        int(port) if host and port.isdigit() else 0,
    )


def pinned_key_for_start(settings: Settings, pin_id: str, started_at: str | None) -> PinnedKey | None:
    """The pinned host key of pin_id when it is the ONLY key the runner's paramiko policy would accept
    for a pod that started at `started_at`; None when paramiko must look at the server first.

    runner/remote/hostkeys.py accepts a different key only if the API says the pod started after the pin was
    taken. So when a pin exists and the pod has not started again since, a system ssh with
    StrictHostKeyChecking=yes and exactly this key checks the same thing paramiko would, and the
    paramiko session can be skipped. No pin (first use), a newer start (a pod re-keys on every
    start), or a store we cannot read return None: the caller connects with paramiko, which pins,
    re-pins, or explains the problem."""
    pin = read_pin(settings, pin_id)
    if pin is None:
        return None
    new, old = parse_utc(started_at), parse_utc(pin.started_at)
    if new is not None and old is not None and new > old:
        return None  # restarted since the pin: the key may legitimately have changed
    return pin.key


def same_start(a: str | None, b: str | None) -> bool:
    """Two API start times name the same pod start (both known and equal as instants)."""
    x, y = parse_utc(a), parse_utc(b)
    return x is not None and x == y


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
        "-i",
        str(key_path),
        "-p",
        str(int(port)),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"HostKeyAlias={alias}",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=4",
        "-o",
        "ConnectTimeout=20",
        "-o",
        "ForwardAgent=no",  # the pod runs code we do not vouch for: never hand it the user's agent
    ]
    algorithms = host_key_algorithms(key_type)
    if algorithms:
        opts += ["-o", f"HostKeyAlgorithms={algorithms}"]
    if batch:
        opts += ["-o", "BatchMode=yes"]
    return opts
