"""A run's config with overrides (RT_CONFIG_SET, `runner train --set` / `runner sweep`): written as a
derived file in the run's own checkout, <repo>/.rt-configs/<run id>.yaml, never by editing the user's
config. Top-level keys only: each overridden key's line (and the lines indented under it) is dropped
from a copy of the config, and `key: <value>` appended, in YAML that PyYAML and the flat parser read
alike (a float always has a dot: PyYAML reads `1e-4` as a string, `1.0e-04` as a number)."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict

DERIVED_DIR = ".rt-configs"
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class DerivedConfigError(Exception):
    """One line saying what is wrong with RT_CONFIG_SET or the derived config; the caller raises it
    again as an InputError (inputs.py imports this module, so it cannot import InputError)."""


def parse(text: str) -> Dict[str, Any]:
    """RT_CONFIG_SET: a JSON object of top-level keys to scalars."""
    try:
        data = json.loads(text)
    except ValueError:
        raise DerivedConfigError("RT_CONFIG_SET must be a JSON object of config keys to values") from None
    if not isinstance(data, dict) or not data:
        raise DerivedConfigError("RT_CONFIG_SET must be a JSON object of config keys to values")
    for key, value in data.items():
        if not KEY_RE.match(key):
            raise DerivedConfigError(f"RT_CONFIG_SET: {key!r} is not a top-level config key (letters, digits, _ and -)")
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise DerivedConfigError(
                f"RT_CONFIG_SET: the value of {key} must be a number, a string, true/false or null"
            )
    return data


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa and mantissa not in ("inf", "-inf", "nan"):
            mantissa += ".0"
        return mantissa + ("e" + exponent if exponent else "")
    return json.dumps(str(value))  # a double-quoted YAML string


def derive(text: str, overrides: Dict[str, Any]) -> str:
    out, skipping = [], False
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip() if line[:1] not in (" ", "\t", "#", "-") and ":" in line else None
        if key is not None:
            skipping = key in overrides
        elif line[:1] not in (" ", "\t") and line.strip():
            skipping = False
        if not skipping:
            out.append(line)
    out.append("# set by the runner for this run (RT_CONFIG_SET):")
    out.extend(f"{key}: {scalar(value)}" for key, value in overrides.items())
    return "\n".join(out) + "\n"


def write(config_path: str, repo_dir: str, run_id: str, overrides: Dict[str, Any]) -> str:
    """The derived config's path (written again on every launch of the run: same overrides, same text)."""
    try:
        with open(config_path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise DerivedConfigError(f"cannot read config {config_path}: {exc.strerror}") from None
    folder = os.path.join(repo_dir, DERIVED_DIR)
    path = os.path.join(folder, run_id + ".yaml")
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(derive(text, overrides))
        os.replace(tmp, path)
    except OSError as exc:
        raise DerivedConfigError(f"cannot write the run's derived config {path}: {exc.strerror}") from None
    return path
