"""The volume's S3 API as the runner uses it: the client as RunPod needs it, and our typed errors.

The client (runner/volume/wire.py): SigV4, path-style addressing (the bucket is a volume id), the data
center as region, standard retries with many attempts (RunPod's docs advise that for its 502s), a long
read timeout (CompleteMultipartUpload of a big file can take minutes), no checksums (RunPod's gateway
is not AWS: no CRC trailers), one kept-alive connection per transfer thread.
"""

from __future__ import annotations

from typing import Any

from runner.errors import VolumeAuthError, VolumeClockSkew, VolumeError, redact
from runner.remote.shell import READ_LIMIT
from runner.volume import listing
from runner.volume.listing import RemoteObject, list_files, list_files_split
from runner.volume.s3_config import VolumeS3

MTIME_META = "rt-mtime-ns"  # object metadata: the local file's mtime (ns) at upload


def make_client(vs: VolumeS3) -> Any:
    from runner.volume.wire import WireClient

    return WireClient(vs.endpoint, vs.region, vs.access_key, vs.secret_key)


def error_code(exc: BaseException) -> tuple[str, int]:
    resp = getattr(exc, "response", None) or {}
    err = resp.get("Error", {}) if isinstance(resp, dict) else {}
    status = (resp.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode", 0) if isinstance(resp, dict) else 0
    return str(err.get("Code", "")), int(status or 0)


def translate(exc: BaseException, vs: VolumeS3, what: str) -> VolumeError:
    """A VolumeError whose message says what to do (never the secret)."""
    from runner.volume.wire import S3ConnectionError

    where = f"volume {vs.bucket} in {vs.region} ({vs.endpoint})"
    if isinstance(getattr(exc, "response", None), dict):
        code, status = error_code(exc)
        detail = redact(str(exc), (vs.secret_key,))
        if code == "RequestTimeTooSkewed":
            return VolumeClockSkew(
                f"RunPod's S3 API rejected {what}: this machine's clock is more than an hour off the server's "
                "(RequestTimeTooSkewed). Set the clock right (e.g. `sudo timedatectl set-ntp true`) and retry."
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return VolumeAuthError(
                f"RunPod's S3 API rejected the S3 API key for {what} ({code}). Check RUNPOD_S3_ACCESS_KEY (your user "
                "id, user_...) and RUNPOD_S3_SECRET_KEY (rps_...) in .runpod.env: create a key in the RunPod console "
                "(Settings > S3 API Keys)."
            )
        if status == 403 or code == "AccessDenied":
            return VolumeAuthError(
                f"RunPod's S3 API answered 403 (access denied) for {what} on {where}. The endpoint must be the one of "
                f"the volume's data center {vs.region} (https://s3api-{vs.region.lower()}.runpod.io/; "
                "RUNPOD_S3_ENDPOINT_URL overrides it), and the S3 API key must belong to the volume's account."
            )
        if code in ("NoSuchBucket",) or (status == 404 and what.startswith("checking")):
            return VolumeError(
                f"RunPod's S3 API does not know {where}; check that the stack's volume_id is the volume "
                "(`pulumi stack output volume_id`) and that it is in that data center."
            )
        return VolumeError(f"RunPod's S3 API failed {what} on {where}: {detail}. Retry in a minute.")
    if isinstance(exc, S3ConnectionError):
        return VolumeError(
            f"cannot reach RunPod's S3 API at {vs.endpoint} for {what} ({redact(str(exc), (vs.secret_key,))}); "
            "check the network (or RUNPOD_S3_ENDPOINT_URL) and retry."
        )
    return VolumeError(
        f"the S3 request for {what} failed ({type(exc).__name__}: {redact(str(exc), (vs.secret_key,))}); retry."
    )


def is_not_found(exc: BaseException) -> bool:
    code, status = error_code(exc)
    return code in ("NoSuchKey", "404", "NotFound") or status == 404


class VolumeClient:
    """The calls the runner makes on the volume; every failure becomes a VolumeError."""

    def __init__(self, vs: VolumeS3, *, parallel: int = 8, client: Any = None):
        self.vs = vs
        self.parallel = parallel
        self.s3 = client if client is not None else make_client(vs)

    def _call(self, what: str, fn, /, **kw):
        try:
            return fn(Bucket=self.vs.bucket, **kw)
        except Exception as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            raise translate(e, self.vs, what) from None

    def check(self) -> None:
        """The keys are accepted and the volume is there: a one-key listing (not HeadBucket: a HEAD answer
        has no body, so a 403 could not tell a skewed clock from a wrong key or data center)."""
        self._call("checking access", self.s3.list_objects_v2, MaxKeys=1, Prefix=".runner/")

    def head(self, key: str) -> dict | None:
        try:
            return self.s3.head_object(Bucket=self.vs.bucket, Key=key)
        except Exception as e:
            if is_not_found(e):
                return None
            raise translate(e, self.vs, f"reading {key}") from None

    def read(self, key: str, *, start: int = 0, limit: int = READ_LIMIT) -> bytes | None:
        """At most `limit` of the object's bytes from `start` on, or None when there is no such file."""
        kw: dict[str, Any] = {"Range": f"bytes={start}-{start + limit - 1}"}
        try:
            resp = self.s3.get_object(Bucket=self.vs.bucket, Key=key, **kw)
            body = resp["Body"]
            try:
                return body.read()
            finally:
                body.close()
        except Exception as e:
            code, status = error_code(e)
            if is_not_found(e):
                return None
            if code == "InvalidRange" or status == 416:
                return b""
            raise translate(e, self.vs, f"reading {key}") from None

    def delete(self, key: str) -> None:
        """One DeleteObject (RunPod has no DeleteObjects)."""
        self._call(f"deleting {key}", self.s3.delete_object, Key=key)

    def list(self, prefix: str, *, expected: list[str] | None = None) -> list[RemoteObject]:
        """Every file under the folder `prefix` (runner/volume/listing.py: RunPod's listing quirks).
        `expected`: keys the caller thinks are there (sorted or not); with many, the listing is cut at
        every (PAGE_SIZE - PAGE_SIZE/64)-th of them and the ranges listed `parallel` at a time."""
        page = listing.PAGE_SIZE
        if expected and len(expected) > page:
            # A range a little under a page: it fits one page with the folders' entries and a few
            # files only the volume has, so the listing costs as many pages as a sequential one
            # (each page is a scan on the server's side, whatever it holds).
            step = max(1, page - page // 64)
            cuts = sorted(expected)[step::step]
            return list_files_split(self, prefix, cuts, parallel=self.parallel, page_size=page)
        return list_files(self, prefix, page_size=page)
