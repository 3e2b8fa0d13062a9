"""Host keys: the value type, the check as a strategy object (HostKeyPolicy), and pinning for pods.

A pod keeps its host key across restarts: the start command `pulumi up` gives it restores the key from
the volume (<workspace>/.runner/ssh-host-keys, remote/podside/bundle.py) before the image's sshd starts.
Pods whose start command does not (created before it did) get new host keys from sshd on every start,
because the container disk is wiped.

The rules, per pod id:
* no pin yet (the first connection): the key the pod keeps on its volume, read through RunPod's
  authenticated S3 API when the stack has S3 keys (`vouched`, runner/pod/kept_host_key.py), must be the
  one presented ("verified"); without S3 or a kept key, trust on first use with the fingerprint shown;
* the pinned key: accepted;
* another key, the RunPod API (authenticated HTTPS, which a network attacker cannot forge) saying the
  pod started again after the pin: accepted and pinned again, loudly, unless the pod is known to keep
  its key (`kept`: it presented the same key across a restart once), in which case it is refused;
* any other change: refused, with both fingerprints.
A pin is provisional until authentication succeeds: the policy decides before authentication and the
pin is written only once the server accepted our key (SshConnection.open calls the confirmation), so a
stale endpoint answering with another server's key cannot poison it.

Store (JSON, mode 0600, replaced atomically):
    {"version": 1, "pins": {"<pod id or host:port>": {"key_type": "ssh-ed25519", "key": "AAAA...",
     "started_at": "2026-07-10T12:00:00Z" | null, "pinned_at": "...", "endpoint": "host:port", "kept": false}}}
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
from runner.output import plain as say
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
# What it returns (if anything) is called once authentication succeeded: where a pin is written.
Confirm = Callable[[], None]
HostKeyPolicy = Callable[[HostKey], "Confirm | None"]


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


Outcome = Literal["pinned", "verified", "matched", "repinned"]

# At a first connection: the host keys an authenticated channel vouches for (None: it has none to give).
Vouched = Callable[[], "list[HostKey] | None"]


@dataclass(frozen=True)
class Verdict:
    """What the store decided about a presented key: the outcome and the entry to write once the
    server authenticated us (None: nothing changes)."""

    outcome: Outcome
    entry: dict | None


@dataclass(frozen=True)
class Pin:
    key_type: str
    key: str  # base64 blob
    started_at: str | None  # the pod's start time when pinned (None: plain --host target)
    pinned_at: str
    endpoint: str = ""
    kept: bool = False  # the pod presented this key again after a restart: it keeps its host key

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
            for entry in pins.values():
                Pin(**entry)  # every entry whole: its fields, nothing else
            return pins
        except (ValueError, KeyError, TypeError):
            raise HostKeyStoreError(
                f"the host key store {self.path} is damaged; delete it (pins are learned again, with their "
                f"fingerprints shown, on the next connection to each pod)."
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
    def verdict(
        self,
        pin_id: str,
        presented: HostKey,
        *,
        started_at: str | datetime | None = None,
        endpoint: str = "",
        vouched: Vouched | None = None,
    ) -> Verdict:
        """Decide about `presented` for `pin_id` without writing anything; HostKeyMismatch to refuse.

        started_at: when the pod last started, from the RunPod API (None for plain hosts).
        vouched: asked only when there is no pin yet; a key it gives must be the one presented."""
        now = datetime.now(timezone.utc).isoformat()
        entry = self._load().get(pin_id)
        new_entry = asdict(Pin(presented.key_type, presented.base64, _iso(started_at), now, endpoint))
        if entry is None:
            known = vouched() if vouched is not None else None
            if not known:
                return Verdict("pinned", new_entry)
            if presented not in known:
                raise HostKeyMismatch(_first_contact_mismatch(pin_id, endpoint, presented, known))
            return Verdict("verified", new_entry)
        pin = Pin(**entry)
        newer = _started_after(started_at, pin.started_at)
        if pin.host_key == presented:
            update: dict = {}
            if newer:
                # Same key across a restart: the pod keeps its key (a later change is refused), and only
                # a later restart could justify a change on a pod that does not.
                update.update(started_at=_iso(started_at), kept=True)
            if endpoint and endpoint != pin.endpoint:
                update["endpoint"] = endpoint  # where it answers now (a start moves the port)
            return Verdict("matched", {**entry, **update} if update else None)
        if newer and not pin.kept:
            return Verdict("repinned", new_entry)
        raise HostKeyMismatch(self._mismatch_message(pin_id, pin, presented, started_at, endpoint))

    def commit(self, pin_id: str, verdict: Verdict) -> None:
        """Write what verdict() decided (after the server authenticated us)."""
        if verdict.entry is None:
            return
        with self._locked():
            pins = self._load()
            pins[pin_id] = verdict.entry
            self._save(pins)

    def check(
        self,
        pin_id: str,
        presented: HostKey,
        *,
        started_at: str | datetime | None = None,
        endpoint: str = "",
    ) -> Outcome:
        """verdict() and commit() at once (a key already known good). Returns "pinned" (first use),
        "matched", or "repinned" (pod restarted, new key accepted)."""
        with self._locked():
            verdict = self.verdict(pin_id, presented, started_at=started_at, endpoint=endpoint)
            if verdict.entry is not None:
                pins = self._load()
                pins[pin_id] = verdict.entry
                self._save(pins)
        return verdict.outcome

    def policy(
        self,
        pin_id: str,
        *,
        started_at: str | datetime | None = None,
        endpoint: str = "",
        on_outcome: Callable[[Outcome, HostKey], None] | None = None,
        vouched: Vouched | None = None,
    ) -> HostKeyPolicy:
        """A HostKeyPolicy for SshConnection.open: decides before authentication, pins after it
        (on_outcome then says "pinned"/"verified"/"repinned", with the fingerprint)."""

        def check(presented: HostKey) -> Confirm:
            verdict = self.verdict(pin_id, presented, started_at=started_at, endpoint=endpoint, vouched=vouched)

            def confirmed() -> None:
                try:
                    self.commit(pin_id, verdict)
                except OSError as e:
                    say(f"warning: could not save the host key pin in {self.path} ({e.strerror})")
                if on_outcome is not None:
                    on_outcome(verdict.outcome, presented)

            return confirmed

        return check

    def _mismatch_message(
        self, pin_id: str, pin: Pin, presented: HostKey, started_at: str | datetime | None, endpoint: str
    ) -> str:
        where = f"{pin_id} ({endpoint})" if endpoint and endpoint != pin_id else pin_id
        if pin.kept and _started_after(started_at, pin.started_at):
            why = (
                "The pod restarted, but it keeps its host key across restarts (its start command restores it "
                "from the volume, and it did so before); a new key means another server answers, or the key "
                "kept in <workspace>/.runner/ssh-host-keys was removed"
            )
        elif pin.started_at is None:
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


def announce(pin_id: str, what: str = "pod") -> Callable[[Outcome, HostKey], None]:
    """on_outcome for policy(): a pin made or replaced is said with its fingerprint (compare it with the
    one the pod printed in its log, or `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on it)."""

    def said(outcome: Outcome, key: HostKey) -> None:
        from runner import output

        if outcome == "pinned":
            if not output.quiet:  # -q: a first pin is progress, like ssh's own "Permanently added" line
                output.say(
                    f"first connection to {what} {pin_id}: pinned its SSH host key {key.key_type} {key.fingerprint}"
                )
        elif outcome == "verified":
            if not output.quiet:
                output.say(
                    f"first connection to {what} {pin_id}: its SSH host key {key.key_type} {key.fingerprint} is the "
                    "one it keeps on the volume (read through RunPod's S3 API); pinned it"
                )
        elif outcome == "repinned":
            output.say(
                f"{what} {pin_id} restarted with a NEW SSH host key {key.key_type} {key.fingerprint}; "
                "pinned it (this pod does not keep its key across restarts: `pulumi up` gives it the start "
                "command that does)"
            )

    return said


def _first_contact_mismatch(pin_id: str, endpoint: str, presented: HostKey, known: list[HostKey]) -> str:
    where = f"{pin_id} ({endpoint})" if endpoint and endpoint != pin_id else pin_id
    kept = ", ".join(f"{k.key_type} {k.fingerprint}" for k in known)
    return (
        f"the first SSH connection to {where} presented host key {presented.key_type} {presented.fingerprint}, "
        f"but the pod keeps {kept} on its volume (<workspace>/.runner/ssh-host-keys, read through RunPod's "
        f"S3 API), so another server may be answering (man-in-the-middle) and the runner refuses to send it "
        f"your code or commands. If the pod's image serves other keys on purpose, delete that folder on the "
        f"volume and connect again (the key is then trusted on first use)."
    )


def _started_after(started_at: str | datetime | None, pinned_started_at: str | None) -> bool:
    new, old = parse_utc(started_at), parse_utc(pinned_started_at)
    return new is not None and old is not None and new > old
