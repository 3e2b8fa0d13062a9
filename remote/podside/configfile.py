"""output_dir from the training config: PyYAML when the interpreter has it, else a small parser of
top-level `key: scalar` lines (enough for output_dir; nested keys are ignored).

Importing PyYAML and parsing cost the launcher ~15-20 ms on every launch, so a launch keeps what
it found in <workspace>/.runner/config-cache.json, keyed on the config's whole text (configs are
small; no hashlib, whose import costs more than the lookup), its path, the repo dir and whether
PyYAML is importable: the same text gives the same answer, any edit (a git update) or another
parser parses again. Only successes are kept; a cache that cannot be read or
written only costs the parse."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from typing import Any, Dict, List, Optional

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


CACHE_ENTRIES = 16


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None


def load_mapping(path: str, text: Optional[str] = None) -> Any:
    text = _read(path) if text is None else text
    try:
        import yaml  # type: ignore
    except ImportError:
        return parse_top_level(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {str(exc).replace(chr(10), ' ')}") from None


def output_dir(config_path: str, repo_dir: str, cache_path: Optional[str] = None) -> str:
    """The absolute output_dir the config names (relative = relative to the repo); with cache_path,
    looked up there first and kept there after a parse."""
    text = _read(config_path)
    if cache_path is None:
        return _parse_output_dir(config_path, repo_dir, text)
    key = _cache_key(config_path, repo_dir, text)
    entries = [e for e in _load_cache(cache_path) if isinstance(e, list) and len(e) == 2]
    for entry_key, value in entries:
        if entry_key == key and isinstance(value, str) and value:
            return value
    value = _parse_output_dir(config_path, repo_dir, text)
    entries = [e for e in entries if e[0] != key][-(CACHE_ENTRIES - 1) :] + [[key, value]]
    _save_cache(cache_path, entries)
    return value


def _cache_key(config_path: str, repo_dir: str, text: str) -> List[str]:
    try:
        parser = "yaml" if importlib.util.find_spec("yaml") is not None else "top-level"
    except (ImportError, ValueError):
        parser = "unknown"
    return [parser, repo_dir, config_path, text]


def _load_cache(path: str) -> List[Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def _save_cache(path: str, entries: List[Any]) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(entries, fh)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _parse_output_dir(config_path: str, repo_dir: str, text: str) -> str:
    value = output_dir_of(config_path, load_mapping(config_path, text))
    return os.path.normpath(os.path.join(repo_dir, os.path.expanduser(value)))


def output_dir_of(config_path: str, data: Any) -> str:
    """The config's output_dir as written (stripped), or ConfigError saying what to fix: one rule for
    the runner's check before anything is spent (runner/train/train_config.py) and the pod's launch."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {config_path} must be a YAML mapping of `key: value` lines (it has no top-level keys)."
        )
    value = data.get("output_dir")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"config {config_path} has no top-level output_dir; add a line such as "
            "`output_dir: checkpoints/<experiment>` (checkpoints go there on the network volume, and training "
            "resumes from the newest one)."
        )
    if "\n" in value or "\r" in value:
        raise ConfigError(f"config {config_path}: output_dir must not contain a line break.")
    return value.strip()
