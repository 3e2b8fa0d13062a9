"""How the stack config's values are checked: every problem collected (`Problems`), each naming the full
config key, then raised at once as ConfigError (defined here) by StackConfig.from_mapping (infra/stack_config.py)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, overload

import pulumi

SSH_PORT_SPEC = "22/tcp"
# A per-GPU-hour price above this is almost certainly a typo (50 instead of 0.50): refuse it
# rather than bid or pay it.
MAX_SANE_PRICE_PER_GPU = 20.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PORT_RE = re.compile(r"^([0-9]{1,5})/(tcp|http)$")
_SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def validate_public_key(text: str) -> str | None:
    """None when `text` is one OpenSSH public key line, else why not (never quoting the text)."""
    if "PRIVATE KEY" in text or text.lstrip().startswith("-----BEGIN"):
        return (
            "is a PRIVATE key. Configure the public half instead (the .pub file, one line "
            "starting with ssh-ed25519 / ssh-rsa / ecdsa-sha2-...); the private key stays on your machine"
        )
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        return "must be exactly one OpenSSH public key line (like the content of ~/.ssh/id_ed25519.pub)"
    parts = lines[0].split()
    if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES:
        return (
            "does not look like an OpenSSH public key: it must start with one of "
            f"{', '.join(_SSH_KEY_TYPES)} followed by the base64 key"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (n,) = struct.unpack(">I", blob[:4])
        embedded = blob[4 : 4 + n].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        return "has a damaged base64 part; copy the whole line from your .pub file again"
    if embedded != parts[0]:
        return f"is inconsistent: the line says {parts[0]} but the key data is {embedded!r}; copy the .pub file again"
    return None


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. RunError makes `pulumi preview` print only this message."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"Invalid stack configuration ({len(self.problems)} problem"
            f"{'' if len(self.problems) == 1 else 's'}):\n{lines}\n"
            f"Change it with `pulumi config set <key> <value>` (or edit Pulumi.<stack>.yaml) "
            f"and run `pulumi preview` again."
        )


class Problems:
    """Collects every problem; each mentions the full config key so the fix is obvious."""

    def __init__(self, project: str):
        self.project = project
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{self.project}:{key} {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)

    def text(self, values: Mapping[str, Any], key: str, default: str) -> str:
        raw = values.get(key, default)
        val = str(raw).strip() if raw is not None else ""
        if not val:
            self.add(key, "must not be empty")
        return val

    def integer(self, values: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
        if key not in values:
            return default
        val = _as_number(values[key])
        if val is None or val != int(val) or not lo <= val <= hi:
            self.add(key, f"must be a whole number from {lo} to {hi} (got {values[key]!r})")
            return default
        return int(val)

    def boolean(self, values: Mapping[str, Any], key: str, default: bool) -> bool:
        if key not in values:
            return default
        raw = values[key]
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        self.add(key, f"must be true or false (got {raw!r})")
        return default

    @overload
    def price(self, values: Mapping[str, Any], key: str, default: float) -> float: ...

    @overload
    def price(self, values: Mapping[str, Any], key: str, default: None) -> float | None: ...

    def price(self, values: Mapping[str, Any], key: str, default: float | None) -> float | None:
        if key not in values:
            return default
        val = _as_number(values[key])
        if val is None or not 0 < val <= MAX_SANE_PRICE_PER_GPU:
            self.add(
                key,
                f"must be a price in USD per GPU-hour, above 0 and at most "
                f"{MAX_SANE_PRICE_PER_GPU:g} (got {values[key]!r})",
            )
            return default
        return float(val)

    def name(self, values: Mapping[str, Any], key: str) -> str | None:
        if key not in values or values[key] in (None, ""):
            return None
        val = str(values[key]).strip()
        if not _NAME_RE.match(val):
            self.add(key, f"must be 1-64 characters of letters, digits, '.', '_' or '-' (got {val!r})")
            return None
        return val

    def ports(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        raw = values.get("ports", [SSH_PORT_SPEC])
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip().startswith("[") else [x for x in raw.split(",")]
            except json.JSONDecodeError:
                raw = None
        if not isinstance(raw, (list, tuple)):
            self.add("ports", 'must be a list like ["22/tcp", "6006/http"]')
            return (SSH_PORT_SPEC,)
        out: list[str] = []
        for item in raw:
            spec = str(item).strip().lower()
            m = _PORT_RE.match(spec)
            if not m or not 1 <= int(m.group(1)) <= 65535:
                self.add("ports", f"entry {item!r} must look like 22/tcp or 6006/http")
            elif spec not in out:
                out.append(spec)
        if SSH_PORT_SPEC not in out:
            self.add("ports", "must include 22/tcp: the runner reaches the pod over SSH")
        return tuple(out) or (SSH_PORT_SPEC,)

    def public_key(self, values: Mapping[str, Any], read_text: Callable[[Path], str]) -> str:
        inline = str(values.get("sshPublicKey") or "").strip()
        path = str(values.get("sshPublicKeyPath") or "").strip()
        if inline and path:
            self.add(
                "sshPublicKey",
                "and sshPublicKeyPath are both set; keep one "
                "(`pulumi config rm sshPublicKeyPath` or `pulumi config rm sshPublicKey`)",
            )
            return ""
        if not inline and not path:
            self.add(
                "sshPublicKey",
                "is required (or sshPublicKeyPath): the OpenSSH public key the pod "
                "accepts, e.g. `pulumi config set sshPublicKeyPath ~/.ssh/id_ed25519.pub`",
            )
            return ""
        key = "sshPublicKey"
        text = inline
        if path:
            key = "sshPublicKeyPath"
            file = Path(os.path.expanduser(path))
            try:
                text = read_text(file)
            except OSError as exc:
                self.add(key, f"cannot read {str(file)!r} ({exc.strerror or exc}); point it at your .pub file")
                return ""
        problem = validate_public_key(text)
        if problem:
            self.add(key, (f"file {path!r} " if path else "") + problem)
            return ""
        return " ".join(text.strip().split())


def _as_number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw) if math.isfinite(raw) else None
    try:
        val = float(str(raw).strip())
    except ValueError:
        return None
    return val if math.isfinite(val) else None
