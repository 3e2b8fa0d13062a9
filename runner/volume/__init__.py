"""The network volume without a pod: RunPod's S3-compatible API (docs/guide/data.md).

Modules: config (is S3 available for this stack, endpoint, keys), wire (the S3 calls, signed, over
http.client), s3 (the client as the runner uses it, and our typed errors), listing (the careful pager),
plan (the incremental diff), transfer (parallel, multipart, interruptible up/downloads), sync (`runner sync` through S3), fetch (`runner pull` through S3),
views (`logs`, `status`, `tensorboard` on a stopped pod). Importing this package imports no HTTP code.

Two entry points for the rest of the runner:
  read_file(settings, outputs, path) -> bytes | None     one small file from the volume, or None
  check_access(settings, outputs) -> Access              for `runner doctor`: S3 available, keys accepted?
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class AccessState(str, Enum):
    OK = "ok"  # keys accepted, volume reachable
    UNAVAILABLE = "unavailable"  # no keys, no volume output, or a data center without the S3 API
    REJECTED = "rejected"  # keys wrong, or endpoint/region mismatch (403)
    CLOCK = "clock"  # this machine's clock is more than an hour off
    FAILED = "failed"  # anything else (network, server)


@dataclass(frozen=True)
class Access:
    state: AccessState
    message: str  # one line saying what was found and, if not OK, what to do
    endpoint: str | None = None
    region: str | None = None
    bucket: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == AccessState.OK


def check_access(settings, outputs) -> Access:
    """Is the stack's volume reachable through S3 with the configured keys? One HeadBucket; never raises
    for S3 failures (a SettingsError for a placeholder key does propagate). No RunPod API call."""
    from runner.errors import VolumeAuthError, VolumeClockSkew, VolumeError
    from runner.volume.s3_config import Unavailable, resolve

    found = resolve(settings, outputs)
    if isinstance(found, Unavailable):
        return Access(AccessState.UNAVAILABLE, found.detail)
    where = dict(endpoint=found.endpoint, region=found.region, bucket=found.bucket)
    from runner.volume.s3 import VolumeClient

    try:
        VolumeClient(found, parallel=1).check()
    except VolumeAuthError as e:
        return Access(AccessState.REJECTED, e.message, **where)
    except VolumeClockSkew as e:
        return Access(AccessState.CLOCK, e.message, **where)
    except VolumeError as e:
        return Access(AccessState.FAILED, e.message, **where)
    return Access(
        AccessState.OK,
        f"volume {found.bucket} is reachable through {found.endpoint} "
        f"(region {found.region}); the S3 API key is accepted",
        **where,
    )


def read_file(settings, outputs, path: str) -> bytes | None:
    """The bytes of one file on the volume through S3, or None when the file is not there or S3 is not
    available for this stack (no keys / data center without it). `path` is as the pod sees it
    (e.g. <workspace>/.runner/self_stop.json) or relative to the workspace. No pod, no RunPod API call.
    Raises VolumeError (ExitCode.API) when S3 is configured but fails (keys rejected, clock, network)."""
    from runner.volume.s3_config import Unavailable, resolve

    found = resolve(settings, outputs)
    if isinstance(found, Unavailable):
        return None
    from runner.volume.s3 import VolumeClient

    return VolumeClient(found, parallel=1).read(found.key_for(path))


__all__ = ["Access", "AccessState", "check_access", "read_file"]
