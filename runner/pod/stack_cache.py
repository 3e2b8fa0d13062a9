"""A cache of the stack outputs, keyed on the stack's state, so an unchanged stack costs no `pulumi` run.

Only for Pulumi's local ("self-managed" file) backend, where the state is a file the runner can read:
<backend>/.pulumi/stacks/<project>/<stack>.json (or .json.gz; older layout <backend>/.pulumi/stacks/<stack>.json).
The backend comes from PULUMI_BACKEND_URL, else Pulumi.yaml's `backend: url:`, else the `current`
login in $PULUMI_HOME/credentials.json (default ~/.pulumi). Any other backend: no cache (every read
runs `pulumi stack output`). The key is the sha256 of the state file's bytes (plus its path, the
stack, the project folder and the pulumi executable), so any `pulumi up`/`refresh`/`destroy`, or a
change made on another machine and copied in, misses.

The cache (<state_dir>/<stack>/stack_outputs.json, mode 0600) holds only outputs that are not
secret in the state; if an output the runner uses is secret there, nothing is cached. Secrets in
the state are encrypted objects carrying Pulumi's secret signature.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CACHE_NAME = "stack_outputs.json"
FORMAT = 1
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"
STACK_TYPE = "pulumi:pulumi:Stack"


def _yaml_scalar(text: str, *keys: str) -> str | None:
    """A top-level (`name`) or one-level nested (`backend: url`) scalar from Pulumi.yaml, without a
    YAML parser (keeps the runner's start-up light); None when absent."""
    want = list(keys)
    inside = False
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indented = line[:1].isspace()
        key, _, value = line.strip().partition(":")
        value = value.strip().strip("'\"")
        if len(want) == 1 and not indented and key == want[0]:
            return value or None
        if len(want) == 2:
            if not indented:
                inside = key == want[0]
            elif inside and key == want[1]:
                return value or None
    return None


def backend_url(project_root: Path, env: Mapping[str, str]) -> str | None:
    url = env.get("PULUMI_BACKEND_URL")
    if url:
        return url
    try:
        text = (project_root / "Pulumi.yaml").read_text(encoding="utf-8")
    except OSError:
        text = ""
    url = _yaml_scalar(text, "backend", "url")
    if url:
        return url
    home = env.get("PULUMI_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".pulumi")
    try:
        with open(os.path.join(home, "credentials.json"), encoding="utf-8") as fh:
            current = json.load(fh).get("current")
    except (OSError, ValueError, AttributeError):
        return None
    return current if isinstance(current, str) else None


def state_file(project_root: Path, stack: str, env: Mapping[str, str]) -> Path | None:
    """The local backend's state file of the stack, or None (another backend, or no such file)."""
    url = backend_url(project_root, env)
    if not url or not url.startswith("file://"):
        return None
    base = url[len("file://") :]
    home = env.get("HOME") or os.path.expanduser("~")
    if base in ("", "~") or base.startswith("~/"):
        base = home + base[1:] if base.startswith("~") else home
    root = Path(base) if os.path.isabs(base) else project_root / base
    try:
        project = _yaml_scalar((project_root / "Pulumi.yaml").read_text(encoding="utf-8"), "name")
    except OSError:
        project = None
    parts = stack.split("/")
    name = parts[-1]
    if len(parts) == 3:
        project = parts[1]
    stacks = root / ".pulumi" / "stacks"
    candidates = [stacks / project / name] if project else []
    candidates.append(stacks / name)
    for c in candidates:
        for suffix in (".json", ".json.gz"):
            p = c.with_name(c.name + suffix)
            if p.is_file():
                return p
    return None


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE


def secret_output_names(state_bytes: bytes, gz: bool) -> set[str] | None:
    """Names of the stack's outputs that are secret in the state; None when the state is unreadable."""
    try:
        data = json.loads(gzip.decompress(state_bytes) if gz else state_bytes)
        resources = data["checkpoint"]["latest"]["resources"]
    except (ValueError, KeyError, TypeError, OSError, EOFError):
        return None
    for res in resources or []:
        if isinstance(res, dict) and res.get("type") == STACK_TYPE:
            outputs = res.get("outputs") or {}
            return {k for k, v in outputs.items() if _is_secret(v)}
    return set()


class StackCache:
    def __init__(self, path: Path, key: str, secret: set[str]):
        self.path = path
        self.key = key
        self.secret = secret

    @classmethod
    def open(
        cls, cache_dir: Path, project_root: Path, stack: str, env: Mapping[str, str], pulumi: str
    ) -> StackCache | None:
        state = state_file(project_root, stack, env)
        if state is None:
            return None
        try:
            blob = state.read_bytes()
        except OSError:
            return None
        secret = secret_output_names(blob, state.suffix == ".gz")
        if secret is None:
            return None
        key = hashlib.sha256(
            json.dumps(
                [FORMAT, stack, str(project_root), str(state), pulumi, hashlib.sha256(blob).hexdigest()]
            ).encode()
        ).hexdigest()
        return cls(cache_dir / CACHE_NAME, key, secret)

    def load(self) -> dict | None:
        """The cached outputs when they were stored under the current key."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != self.key or not isinstance(data.get("outputs"), dict):
            return None
        return data["outputs"]

    def store(self, outputs: Mapping[str, Any], needed: set[str]) -> bool:
        """Writes the non-secret outputs (0600, atomically); nothing when a needed one is secret."""
        if self.secret & needed:
            self.drop()
            return False
        kept = {k: v for k, v in outputs.items() if k not in self.secret}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.tmp.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"key": self.key, "outputs": kept}, fh)
            os.replace(tmp, self.path)
        except OSError:
            return False
        return True

    def drop(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass
