"""Whether the network volume is reachable through RunPod's S3-compatible API, and where.

RunPod (docs: storage/s3-api): endpoint https://s3api-<data center, lower-case>.runpod.io/, region = the
data center id (EU-RO-1), bucket = the volume id, object key = the path on the volume (the pod sees it
under /workspace). Credentials are a separate "S3 API key": access key = the user id (user_...), secret
rps_.... Only some Secure Cloud data centers have it (S3_DATA_CENTERS, as the docs list them).

No HTTP here: deciding costs nothing, so every command can ask.
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass, field
from enum import Enum
from pathlib import PurePosixPath
from typing import Any

from runner.errors import SettingsError

# The data centers whose volumes the S3 API reaches (RunPod docs, storage/s3-api, "Datacenter availability").
S3_DATA_CENTERS = (
    "EU-CZ-1",
    "EU-RO-1",
    "EUR-IS-1",
    "EUR-NO-1",
    "US-CA-2",
    "US-GA-2",
    "US-IL-1",
    "US-KS-2",
    "US-MD-1",
    "US-MO-1",
    "US-MO-2",
    "US-NC-1",
    "US-NC-2",
    "US-NE-1",
    "US-WA-1",
)
PUT_LIMIT = 500 * 1024 * 1024  # RunPod: PutObject < 500 MB, and at most 500 MB per multipart part
UPLOADS_PREFIX = ".s3compat_uploads/"  # RunPod keeps in-progress multipart uploads here (hidden from us)
KEYS_HINT = (
    "create an S3 API key in the RunPod console (Settings > S3 API Keys) and set RUNPOD_S3_ACCESS_KEY "
    "(your user id, user_...) and RUNPOD_S3_SECRET_KEY (rps_...) in .runpod.env"
)


def endpoint_for(data_center: str) -> str:
    return f"https://s3api-{data_center.lower()}.runpod.io/"


class Why(str, Enum):
    """Why the S3 path is not available (Unavailable.why)."""

    NO_KEYS = "no-keys"
    NO_VOLUME = "no-volume"
    DATA_CENTER = "data-center"


@dataclass(frozen=True)
class VolumeS3:
    """Everything a client needs to reach the stack's volume; the secret never shows in repr."""

    endpoint: str
    region: str  # the data center id
    bucket: str  # the volume id
    workspace: str  # where the pod mounts the volume (keys are relative to it)
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    def key_for(self, path: str) -> str:
        """The object key of a path on the pod (absolute under the workspace, or relative to it)."""
        p = PurePosixPath(path)
        if p.is_absolute():
            try:
                p = p.relative_to(self.workspace)
            except ValueError:
                raise SettingsError(
                    f"{path} is not on the network volume (mounted at {self.workspace} on the pod); "
                    "pass a path under it, or one relative to it."
                ) from None
        key = p.as_posix().strip("/")
        if key in ("", ".") or any(part == ".." for part in p.parts):
            raise SettingsError(
                f"{path!r} is not a file or folder on the volume; pass e.g. outputs/<run>/checkpoint-500."
            )
        return key

    def path_for(self, key: str) -> str:
        return str(PurePosixPath(self.workspace) / key)


@dataclass(frozen=True)
class Unavailable:
    why: Why
    detail: str

    def hint(self, what: str) -> str:
        """One line: how S3 would make `what` cheaper."""
        return f"note: {what} without starting the pod is possible through RunPod's S3 API: {self.detail}."


def resolve(settings, outputs) -> VolumeS3 | Unavailable:
    """The S3 coordinates of the stack's volume, or why there are none (no keys, no volume, another DC)."""
    access, secret = settings.s3_access_key, settings.s3_secret_key
    if not access or not secret:
        return Unavailable(Why.NO_KEYS, KEYS_HINT)
    for name, value in (("RUNPOD_S3_ACCESS_KEY", access), ("RUNPOD_S3_SECRET_KEY", secret)):
        if "<" in value or any(c.isspace() for c in value):
            raise SettingsError(
                f"{name} in .runpod.env is still the example placeholder or has spaces; paste the "
                "value from the RunPod console (Settings > S3 API Keys), or remove the line."
            )
    if not outputs.volume_id:
        return Unavailable(Why.NO_VOLUME, "the stack has no volume_id output; run `pulumi up`")
    dc = (outputs.data_center or "").upper()
    endpoint = settings.s3_endpoint_url
    if not endpoint:
        if dc not in S3_DATA_CENTERS:
            return Unavailable(
                Why.DATA_CENTER,
                f"the volume is in {dc or 'an unknown data center'}, which has no S3 API "
                f"(it is in {', '.join(S3_DATA_CENTERS)}); a volume in one of those has it",
            )
        endpoint = endpoint_for(dc)
    return VolumeS3(
        endpoint=endpoint,
        region=dc or "EU-RO-1",
        bucket=outputs.volume_id,
        workspace=outputs.workspace,
        access_key=access,
        secret_key=secret,
    )


def why_not(settings, outputs) -> str:
    """Why RunPod's S3 API cannot reach the stack's volume (for an error that says what S3 would give)."""
    found = resolve(settings, outputs)
    return found.detail if isinstance(found, Unavailable) else "it is set up"


_said: dict[int, tuple[Any, set[str]]] = {}  # id(settings) -> (weakref to it, hints given)


def say_hint_once(unavailable: Unavailable, what: str, settings: Any = None) -> None:
    """Print how S3 would make `what` cheaper, once per command (one Settings object: one cli.main)."""
    ref, given = _said.get(id(settings), (None, set()))
    if ref is None or ref() is not settings:
        given = set()
        try:
            _said[id(settings)] = (weakref.ref(settings), given)
        except TypeError:
            pass
    if unavailable.why in given:
        return
    given.add(unavailable.why)
    print(unavailable.hint(what), file=sys.stderr, flush=True)
