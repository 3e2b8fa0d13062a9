"""Training's secrets: the variables TRAIN_SECRETS names on the runner (HF_TOKEN, WANDB_API_KEY, ...),
given to the training process and to nothing else on the pod.

The runner sends their values as RT_TRAIN_SECRETS, a JSON object {name: value}, in the launch script it
streams on stdin (never a command line); the shim (remote_train.sh, rt_keep_private) moves it from the
environment into a private temp file, RT_TRAIN_SECRETS_FILE, before this program starts. take() reads
and deletes that file, so nothing this program starts (tmux's server, the supervisor, pip) inherits the
values, and they are never in .runner/supervise.json (launch.NOT_SAVED), the log or the run's spec.

A launch keeps them in the pod's train-secrets.json (VolumePaths.train_secrets; mode 0600, replaced atomically): a
relaunch that nobody attends (autoresume.py, the pod's own start after a preemption) reads them there,
as does the supervisor, which adds them to training's environment only. The file goes when the run
ends (a finished run is never relaunched by the pod); an empty object removes it; a launch without
RT_TRAIN_SECRETS (an older runner) leaves it as it is. Why a file on the volume and not RunPod's
secrets or the pod's environment: docs/guide/tracker-and-secrets.md.
"""

from __future__ import annotations

import json
import os
import re
from typing import Dict, MutableMapping, Optional

from . import record
from .contract import Inputs, VolumePaths
from .credential import remove_private
from .inputs import InputError

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Never a training secret: the runner's inputs, what the supervisor sets for training, the pod's key.
RESERVED = ("PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "HOME", "RUNPOD_API_KEY", "RUNPOD_POD_ID")


class SecretsError(ValueError):
    """RT_TRAIN_SECRETS is not a JSON object of allowed names to strings (the message never has a value)."""


def refused(name: str) -> Optional[str]:
    """Why `name` cannot be a training secret, or None."""
    if not NAME_RE.match(name):
        return f"{name!r} is not an environment variable name (letters, digits and _, not starting with a digit)"
    if name.startswith("RT_"):
        return f"{name} is one of the runner's own inputs (RT_*)"
    if name in RESERVED:
        return f"{name} is set on the pod by the runner or RunPod, never by a secret"
    return None


def parse(text: str) -> Dict[str, str]:
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        raise SecretsError("not JSON") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SecretsError("not an object of names to strings")
    for name in data:
        why = refused(name)
        if why:
            raise SecretsError(why)
    return data


def take(environ: MutableMapping[str, str]) -> Optional[Dict[str, str]]:
    """This launch's secrets, taken out of `environ` (the shim's file is deleted); None when the launch
    sent none (an older runner: the file on the volume stays as it is). SecretsError when malformed."""
    text = environ.pop(Inputs.TRAIN_SECRETS, None)
    path = environ.pop(Inputs.TRAIN_SECRETS_FILE, None)
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            pass
        remove_private(path)
    return None if text is None else parse(text)


def keep(paths: VolumePaths, secrets: Optional[Dict[str, str]]) -> None:
    """The launch's secrets on the volume for its supervisor and a relaunch (None: unchanged); InputError
    when they cannot be written (the launch stops before anything runs without them)."""
    if secrets is None:
        return
    if not secrets:
        forget(paths)
        return
    try:
        record.write_json_atomic(paths.train_secrets, secrets, mode=0o600)
    except OSError as exc:
        raise InputError(f"cannot write {paths.train_secrets} ({exc.strerror}); is the volume full?") from None


def load(paths: VolumePaths) -> Dict[str, str]:
    """The secrets kept on the volume ({} when none, or when the file is not what keep() writes)."""
    try:
        with open(paths.train_secrets, encoding="utf-8") as fh:
            return parse(fh.read())
    except (OSError, SecretsError):
        return {}


def forget(paths: VolumePaths) -> None:
    try:
        os.unlink(paths.train_secrets)
    except OSError:
        pass


__all__ = ["SecretsError", "forget", "keep", "load", "parse", "refused", "take"]
