"""The stack's plain (non-secret) config, read from Pulumi.<stack>.yaml in the project root.

The doctor needs it before the first `pulumi up` (no outputs yet) and for what outputs do not
carry (the public key the pod accepts). Secrets are never read here. Defaults are the program's
(infra/stack_config.py), repeated as literals so the doctor does not import Pulumi.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.doctor.check import Context

DEFAULTS: dict[str, Any] = {
    "gpuType": "NVIDIA GeForce RTX 4090",
    "gpuCount": 1,
    "bidPerGpu": 0.50,
    "spotFallback": "fail",
    "dataCenter": "EU-RO-1",
}


@dataclass(frozen=True)
class StackConfigView:
    path: Path
    exists: bool
    values: dict[str, Any]

    def describe(self) -> str:
        return f"stack config {self.path.name}" if self.exists else f"{self.path.name} (missing)"

    def get(self, key: str) -> Any:
        value = self.values.get(key)
        return DEFAULTS.get(key) if value is None else value

    @property
    def public_key(self) -> tuple[str, str | None] | None:
        """(where it came from, the key line or None when unreadable); None when neither key is set."""
        inline = self.values.get("sshPublicKey")
        if isinstance(inline, str) and inline.strip():
            return f"sshPublicKey in {self.path.name}", inline
        path = self.values.get("sshPublicKeyPath")
        if isinstance(path, str) and path.strip():
            where = f"sshPublicKeyPath {path} ({self.path.name})"
            try:
                return where, Path(os.path.expanduser(path)).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return where, None
        return None


def _project_name(root: Path) -> str:
    import yaml

    try:
        data = yaml.safe_load((root / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return "runpod-trainer"
    return str(data.get("name") or "runpod-trainer") if isinstance(data, dict) else "runpod-trainer"


def _load(ctx: Context) -> StackConfigView:
    import yaml

    root = ctx.settings.project_root
    path = root / f"Pulumi.{ctx.settings.stack.split('/')[-1]}.yaml"  # org/project/dev -> Pulumi.dev.yaml
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        return StackConfigView(path, False, {})
    except yaml.YAMLError:
        return StackConfigView(path, True, {})
    config = data.get("config") if isinstance(data, dict) else None
    namespace = _project_name(root) + ":"
    values: dict[str, Any] = {}
    for key, value in (config or {}).items() if isinstance(config, dict) else ():
        if isinstance(value, dict):  # {secure: ...}: never read
            continue
        key = str(key)
        if key.startswith(namespace):
            values[key[len(namespace) :]] = value
        elif ":" not in key:
            values.setdefault(key, value)
    return StackConfigView(path, True, values)


def stack_config(ctx: Context) -> StackConfigView:
    return ctx.once("stack_config", lambda: _load(ctx))


__all__ = ["DEFAULTS", "StackConfigView", "stack_config"]
