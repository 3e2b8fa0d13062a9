"""output_dir from the training config: PyYAML when the interpreter has it, else a small parser of
top-level `key: scalar` lines (enough for output_dir; nested keys are ignored)."""
from __future__ import annotations

import os
import re
from typing import Any, Dict

_KEY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*:(?:\s+(.*))?$")


class ConfigError(Exception):
    """One line saying what is wrong with the config and how to fix it."""


def parse_top_level(text: str) -> Dict[str, Any]:
    """Top-level `key: scalar` lines only: quoted values unquoted, `# comments` and null dropped."""
    data: Dict[str, Any] = {}
    for line in text.splitlines():
        match = _KEY_RE.match(line.rstrip())
        if not match:
            continue
        value = (match.group(2) or "").strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            value = value[1:end] if end > 0 else value[1:]
            data[match.group(1)] = value
            continue
        value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        data[match.group(1)] = None if value in ("", "~", "null", "Null", "NULL") else value
    return data


def load_mapping(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        import yaml  # type: ignore
    except ImportError:
        return parse_top_level(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {str(exc).replace(chr(10), ' ')}") from None


def output_dir(config_path: str, repo_dir: str) -> str:
    """The absolute output_dir the config names (relative = relative to the repo)."""
    data = load_mapping(config_path)
    if not isinstance(data, dict):
        raise ConfigError(f"config {config_path} is not a YAML mapping of key: value pairs")
    value = data.get("output_dir")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"config {config_path} has no top-level output_dir (a non-empty string); add a line "
                          "such as 'output_dir: checkpoints/<experiment>'")
    if "\n" in value or "\r" in value:
        raise ConfigError(f"config {config_path}: output_dir must not contain a line break")
    return os.path.normpath(os.path.join(repo_dir, os.path.expanduser(value.strip())))
