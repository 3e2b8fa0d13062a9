"""RunPod's own CLI configuration, ~/.runpod/config.toml: the API key's last source, used when
RUNPOD_API_KEY is in neither .runpod.env nor the environment (`runpod login` and RunPod's SDK write
it as `[default]` / `api_key = "..."`, the profile their SDK reads by default)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

PROFILE = "default"


def config_path(environ: Mapping[str, str]) -> Path | None:
    home = environ.get("HOME")
    return Path(home) / ".runpod" / "config.toml" if home else None


def api_key_from_config(environ: Mapping[str, str]) -> tuple[str, Path] | None:
    """The default profile's api_key and the file it came from; None when there is none (an unreadable
    or malformed file counts as none: RunPod's SDK treats it the same)."""
    path = config_path(environ)
    if path is None or not path.is_file():
        return None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError):
        return None
    profile = data.get(PROFILE)
    key = profile.get("api_key") if isinstance(profile, dict) else None
    return (key, path) if isinstance(key, str) and key.strip() else None
