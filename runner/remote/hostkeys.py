"""Host keys: the value type, the check as a strategy object (HostKeyPolicy), and pinning for pods.

Pods: trust on first use, re-pin only across a pod restart.

A RunPod pod's container disk is wiped on every stop, so its sshd generates new host keys after
each start: a fixed known_hosts entry would break on every resume, and StrictHostKeyChecking=no
would accept anybody. Instead we pin the key per pod together with the pod's `started_at` (from
the authenticated RunPod API, which a network attacker cannot forge). A different key is accepted
only if the API says the pod started again after the pin; otherwise the connection is refused.

Store (JSON, mode 0600, replaced atomically):
    {"version": 1, "pins": {"<pod id or host:port>": {"key_type": "ssh-ed25519", "key": "AAAA...",
     "started_at": "2026-07-10T12:00:00Z" | null, "pinned_at": "...", "endpoint": "host:port"}}}
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from runner.errors import HostKeyMismatch, HostKeyStoreError
from runner.paths import write_private
from runner.timestamps import parse_utc

DEFAULT_STORE = Path("~/.runpod-trainer/known_hosts.json")
STORE_VERSION = 1


@dataclass(frozen=True)
class HostKey:
    """A server's public host key as presented in the handshake."""

    key_type: str  # e.g. "ssh-ed25519"
    base64: str  # the key blob, base64 as in known_hosts / *.pub files

    @classmethod
    def from_line(cls, line: str) -> HostKey:
        """From an OpenSSH public key line ("ssh-ed25519 AAAA... [comment]")."""
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f"not an OpenSSH public key line: {line!r}")
        return cls(parts[0], parts[1])

    @property
    def line(self) -> str:
        return f"{self.key_type} {self.base64}"

    @property
    def fingerprint(self) -> str:
        """SHA256 fingerprint in OpenSSH's notation (what `ssh-keygen -lf` prints)."""
        digest = hashlib.sha256(base64.b64decode(self.base64)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


# Called with the key the server presented, before we authenticate; raises HostKeyMismatch to refuse.
HostKeyPolicy = Callable[[HostKey], None]


def expect_host_key(expected_line: str) -> HostKeyPolicy:
    """A policy that accepts exactly one key (e.g. a key known out of band, or in tests)."""
    expected = HostKey.from_line(expected_line)

    def check(presented: HostKey) -> None:
        if presented != expected:
            raise HostKeyMismatch(
                f"the server presented host key {presented.key_type} {presented.fingerprint}, "
                f"expected {expected.key_type} {expected.fingerprint}"
            )

    return check


Outcome = Literal["pinned", "matched", "repinned"]


@dataclass(frozen=True)
class Pin:
    key_type: str
    key: str  # base64 blob
    started_at: str | None  # the pod's start time when pinned (None: plain --host target)
    pinned_at: str
    endpoint: str = ""

    @property
    def host_key(self) -> HostKey:
        return HostKey(self.key_type, self.key)


def pin_id_for_host(host: str, port: int) -> str:
    """The pin name for a plain host target (no pod id)."""
    return f"{host}:{port}"


def _iso(value: str | datetime | None) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return value or None


class HostKeyStore:
    def __init__(self, path: str | Path = DEFAULT_STORE):
        self.path = Path(path).expanduser()

    # ---- file handling --------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write between runner processes (train + logs at the same time)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self) -> dict[str, dict]:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise HostKeyStoreError(f"cannot read the host key store {self.path} ({e.strerror}).") from None
        try:
            data = json.loads(raw)
            pins = data["pins"]
            if not isinstance(pins, dict):
                raise TypeError
            return pins
        except (ValueError, KeyError, TypeError):
            raise HostKeyStoreError(
                f"the host key store {self.path} is damaged; delete it (pins are re-learned on the next "
                f"connection to each pod)."
            ) from None

    def _save(self, pins: dict[str, dict]) -> None:
        text = json.dumps({"version": STORE_VERSION, "pins": pins}, indent=2, sort_keys=True) + "\n"
        write_private(self.path, text)

    # ---- queries --------------------------------------------------------------------------------
    def get(self, pin_id: str) -> Pin | None:
        entry = self._load().get(pin_id)
        return Pin(**entry) if entry else None

    def forget(self, pin_id: str) -> bool:
        """Remove a pin (the next connection pins whatever key it sees). True if there was one."""
        with self._locked():
            pins = self._load()
            if pin_id not in pins:
                return False
            del pins[pin_id]
            self._save(pins)
            return True

    # ---- the check ------------------------------------------------------------------------------
    def check(
        self,
        pin_id: str,
        presented: HostKey,
        *,
        started_at: str | datetime | None = None,
        endpoint: str = "",
    ) -> Outcome:
        """Accept `presented` for `pin_id` or raise HostKeyMismatch.

        started_at: when the pod last started, from the RunPod API (None for plain hosts).
        Returns "pinned" (first use), "matched", or "repinned" (pod restarted, new key accepted).
        """
        now = datetime.now(timezone.utc).isoformat()
        with self._locked():
            pins = self._load()
            entry = pins.get(pin_id)
            new_entry = asdict(Pin(presented.key_type, presented.base64, _iso(started_at), now, endpoint))
            if entry is None:
                pins[pin_id] = new_entry
                self._save(pins)
                return "pinned"
            pin = Pin(**entry)
            newer = _started_after(started_at, pin.started_at)
            if pin.host_key == presented:
                update = {}
                if newer:
                    # Same key across a restart: remember the newer start so that only a later
                    # restart can justify a key change.
                    update["started_at"] = _iso(started_at)
                if endpoint and endpoint != pin.endpoint:
                    update["endpoint"] = endpoint  # where it answers now (a start moves the port)
                if update:
                    pins[pin_id] = {**entry, **update}
                    self._save(pins)
                return "matched"
            if newer:
                pins[pin_id] = new_entry
                self._save(pins)
                return "repinned"
        raise HostKeyMismatch(self._mismatch_message(pin_id, pin, presented, started_at, endpoint))

    def policy(
        self,
        pin_id: str,
        *,
        started_at: str | datetime | None = None,
        endpoint: str = "",
        on_outcome: Callable[[Outcome, HostKey], None] | None = None,
    ) -> HostKeyPolicy:
        """A HostKeyPolicy for SshConnection.open (on_outcome can log "pinned"/"repinned")."""

        def check(presented: HostKey) -> None:
            outcome = self.check(pin_id, presented, started_at=started_at, endpoint=endpoint)
            if on_outcome is not None:
                on_outcome(outcome, presented)

        return check

    def _mismatch_message(
        self, pin_id: str, pin: Pin, presented: HostKey, started_at: str | datetime | None, endpoint: str
    ) -> str:
        where = f"{pin_id} ({endpoint})" if endpoint and endpoint != pin_id else pin_id
        if pin.started_at is None:
            why = "This target has no pod start time to justify a new key"
        elif started_at is None:
            why = "No pod start time was given to justify a new key"
        else:
            why = (
                f"RunPod reports the pod started at {_iso(started_at)}, not after the key was pinned "
                f"(pod start {pin.started_at})"
            )
        return (
            f"the SSH host key of {where} changed: pinned {pin.key_type} {pin.host_key.fingerprint}, "
            f"now {presented.key_type} {presented.fingerprint}. {why}, so someone may be intercepting "
            f"the connection (man-in-the-middle) and the runner refuses to send it your code or commands. "
            f"If you know why the key changed (e.g. you rebuilt the pod or its image), remove the pin: "
            f'delete the "{pin_id}" entry from {self.path} (or the whole file) and connect again.'
        )


def _started_after(started_at: str | datetime | None, pinned_started_at: str | None) -> bool:
    new, old = parse_utc(started_at), parse_utc(pinned_started_at)
    return new is not None and old is not None and new > old
