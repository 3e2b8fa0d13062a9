"""`runner settings`: each effective setting, its value and its source, secrets redacted (as `aws
configure list` shows a profile)."""

from __future__ import annotations

import argparse
import json

from runner.envfile import KEYS, SECRET_KEYS
from runner.settings import Settings
from runner.train.repo_check import mask_url

SCHEMA_VERSION = 1  # of --json: raised when a key changes meaning or goes away
REDACTED = "********"


def shown_value(key: str, value: str | None) -> str | None:
    if value is None:
        return None
    if key in SECRET_KEYS:
        return REDACTED
    if key == "REPO_URL":
        return mask_url(value)
    return value


def rows(settings: Settings) -> list[tuple[str, str | None, str | None]]:
    """(key, the value as shown, its source) for every known key, in .runpod.env.example's order."""
    return [
        (key, shown_value(key, settings.values.get(key)), settings.sources.get(key) if key in settings.values else None)
        for key in KEYS
    ]


def run(args: argparse.Namespace, settings: Settings) -> int:
    table = rows(settings)
    if args.json:
        body = {
            "schema_version": SCHEMA_VERSION,
            "env_file": str(settings.env_file) if settings.env_file else None,
            "project_root": str(settings.project_root),
            "settings": {key: {"value": value, "source": source} for key, value, source in table},
        }
        print(json.dumps(body, indent=2))
        return 0
    print(f"settings file: {settings.env_file or 'none found (.runpod.env in this directory or the project root)'}")
    print(f"project root:  {settings.project_root}")
    width = max(len(key) for key in KEYS)
    for key, value, source in table:
        print(f"  {key:<{width}}  {value if value is not None else '(not set)':<40}  {source or ''}".rstrip())
    return 0
