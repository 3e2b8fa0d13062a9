"""Settings whose values are secrets beyond the keys: NOTIFY_URL's webhooks, and TRAIN_SECRETS.

TRAIN_SECRETS names the variables training gets on the pod (HF_TOKEN for gated models and the Hub,
WANDB_API_KEY, ...); their values come from the environment, else from .runpod.env. The runner sends
them in the launch's stdin (RT_TRAIN_SECRETS); the pod keeps them for training alone
(remote/podside/trainsecrets.py). docs/guide/tracker-and-secrets.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from remote.podside.trainsecrets import refused
from runner.errors import SettingsError

if TYPE_CHECKING:
    from runner.settings import Settings

KEY = "TRAIN_SECRETS"


def notify_setting(text: str | None, source: str) -> tuple[str, ...]:
    """NOTIFY_URL: one or more webhook URLs; an error names the setting, never the URL (it is a secret)."""
    if not text:
        return ()
    from remote.podside.notify import NotifyUrlError, parse_urls

    try:
        return tuple(parse_urls(text))
    except NotifyUrlError as e:
        raise SettingsError(f"NOTIFY_URL ({source}): {e}; separate several URLs with commas.") from None


def secret_names(text: str | None, source: str) -> tuple[str, ...]:
    """The names TRAIN_SECRETS lists (commas or spaces between them); SettingsError for one that cannot be."""
    found: list[str] = []
    for name in re.split(r"[\s,]+", text or ""):
        if not name or name in found:
            continue
        why = refused(name)
        if why:
            raise SettingsError(f"{KEY} ({source}): {why}; list the names of the variables training needs.")
        found.append(name)
    return tuple(found)


def secret_values(
    wanted: tuple[str, ...], environ: Mapping[str, str], file_values: Mapping[str, str]
) -> dict[str, str]:
    """Each named variable's value: the environment's, else the settings file's (empty counts as unset)."""
    out: dict[str, str] = {}
    for name in wanted:
        value = environ.get(name) or file_values.get(name)
        if value:
            out[name] = value
    return out


def required(settings: Settings) -> Mapping[str, str]:
    """TRAIN_SECRETS' values, every named one found: `runner train` asks before anything is spent, and a
    name without a value is a SettingsError that names it (never a value)."""
    wanted, found = settings.train_secret_names, settings.train_secrets
    absent = [name for name in wanted if name not in found]
    if not absent:
        return found
    env_file = str(settings.env_file) if settings.env_file else ".runpod.env"
    listed = ", ".join(absent)
    raise SettingsError(
        f"{KEY} names {listed}, but {'it is' if len(absent) == 1 else 'they are'} set neither in the environment "
        f"nor in {env_file}; add `{absent[0]}=...` to {env_file} (chmod 600) or export it, or take it out of {KEY}."
    )


def for_launch(settings: Settings) -> Mapping[str, str] | None:
    """What a launch sends: every named value; {} when TRAIN_SECRETS names none (the volume's file goes);
    None when a named one has no value here (a watcher whose environment lacks it relaunches the run:
    the volume keeps what `runner train`, which checked them all, sent)."""
    wanted, found = settings.train_secret_names, settings.train_secrets
    return None if any(name not in found for name in wanted) else {name: found[name] for name in wanted}


def launch_input(found: Mapping[str, str]) -> str:
    """RT_TRAIN_SECRETS: the JSON object the pod keeps ("{}" clears what an earlier launch left)."""
    return json.dumps(dict(found), sort_keys=True)


__all__ = ["KEY", "for_launch", "launch_input", "notify_setting", "required", "secret_names", "secret_values"]
