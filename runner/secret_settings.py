"""TRAIN_SECRETS at launch time (runner/envfile.py reads the setting): every named value present before
anything is spent, and what a launch sends.

TRAIN_SECRETS names the variables training gets on the pod (HF_TOKEN for gated models and the Hub,
WANDB_API_KEY, ...); their values come from the environment, else from .runpod.env. The runner sends
them in the launch's stdin (RT_TRAIN_SECRETS); the pod keeps them for training alone
(remote/podside/trainsecrets.py). docs/guide/tracker-and-secrets.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from runner.errors import SettingsError

if TYPE_CHECKING:
    from runner.settings import Settings

KEY = "TRAIN_SECRETS"


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


__all__ = ["KEY", "for_launch", "launch_input", "required"]
