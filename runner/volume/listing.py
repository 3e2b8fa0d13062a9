"""List the files under a prefix of the volume, with RunPod's listing quirks handled.

- Listings include directory entries (`dir/`, size 0): dropped, we list files (also a `dir` without the
  slash, when other keys lie below it).
- In-progress multipart uploads live under `.s3compat_uploads/`: dropped.
- Above ~10,000 objects a listing can be slow (RunPod computes ETags on first sight; the client's
  timeouts and retries cover that, runner/volume/wire.py) and can hand out the same continuation token
  twice, which makes a naive pager loop forever (`aws s3 sync` stops with "The same next token was received twice"). Here a repeated or
  missing token makes the pager pause and continue with StartAfter=<the last key it has>, so every page
  must bring a key past the ones it already has; pages that do not, MAX_STALLS times in a row, end the
  listing with an error instead of a loop.
- A big listing is a chain of pages, each asked for after the one before arrived: list_files_split cuts
  it into key ranges (StartAfter=<cut>) listed side by side, so a far link pays its round trip per
  page once per chain, not once per page.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from runner.errors import VolumeError
from runner.volume.s3_config import UPLOADS_PREFIX

PAGE_SIZE = 1000
MAX_STALLS = 4
STALL_PAUSE_S = 1.0


@dataclass(frozen=True)
class RemoteObject:
    """A file on the volume as the S3 API lists it (directory entries and RunPod's upload area removed)."""

    key: str
    size: int
    last_modified: float  # epoch seconds
    etag: str = ""


def is_hidden(key: str) -> bool:
    """A directory entry or RunPod's multipart upload area (not a file of ours)."""
    return key.endswith("/") or key.startswith(UPLOADS_PREFIX) or f"/{UPLOADS_PREFIX}" in key


def normal_prefix(prefix: str) -> str:
    p = prefix.strip("/")
    return f"{p}/" if p else ""


def list_files(client: Any, prefix: str, *, page_size: int = PAGE_SIZE) -> list[RemoteObject]:
    """Every file under `prefix` (a folder on the volume, '' = all), sorted by key; `client` is a
    runner.volume.s3.VolumeClient."""
    return _files(_list_range(client, normal_prefix(prefix), "", None, page_size))


def list_files_split(
    client: Any, prefix: str, splits: Sequence[str], *, parallel: int = 8, page_size: int = PAGE_SIZE
) -> list[RemoteObject]:
    """The same as list_files, listed as key ranges side by side: (start, splits[0]], (splits[0],
    splits[1]], ... (splits[-1], end). A listing is a chain of pages, each waiting for the one before;
    ranges cut at keys the caller expects (the local files' keys, one every page_size) let `parallel`
    chains run at once, so a listing of N keys costs ~N/(page_size*parallel) round trips, not N/page_size."""
    base = normal_prefix(prefix)
    cuts = sorted({k for k in splits if k.startswith(base) and k > base})
    if not cuts:
        return list_files(client, prefix, page_size=page_size)
    bounds = list(zip(["", *cuts], [*cuts, None]))
    found: dict[str, RemoteObject] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(bounds)))) as pool:
        for part in pool.map(lambda b: _list_range(client, base, b[0], b[1], page_size), bounds):
            found.update(part)
    return _files(found)


def _list_range(client: Any, prefix: str, after: str, upto: str | None, page_size: int) -> dict[str, RemoteObject]:
    """The files with after < key <= upto (upto None: to the end) under prefix, by key."""
    found: dict[str, RemoteObject] = {}
    seen_tokens: set[str] = set()
    token: str | None = None
    start_after: str | None = after or None
    last_key = after  # the greatest key any page has brought (files and directory entries)
    stalls = 0
    while True:
        kw: dict = {"Prefix": prefix, "MaxKeys": page_size}
        if token:
            kw["ContinuationToken"] = token
        elif start_after:
            kw["StartAfter"] = start_after
        resp = client._call(f"listing {prefix or 'the volume'}", client.s3.list_objects_v2, **kw)
        before = last_key
        for item in resp.get("Contents", []) or []:
            key = item["Key"]
            last_key = max(last_key, key)
            if is_hidden(key) or key <= after or (upto is not None and key > upto):
                continue
            modified = item.get("LastModified")
            found[key] = RemoteObject(
                key=key,
                size=int(item.get("Size", 0)),
                last_modified=modified.timestamp() if modified is not None else 0.0,
                etag=str(item.get("ETag", "")).strip('"'),
            )
        if not resp.get("IsTruncated") or (upto is not None and last_key > upto):
            break
        advanced = last_key > before
        stalls = 0 if advanced else stalls + 1
        if stalls >= MAX_STALLS:
            raise VolumeError(
                f"RunPod's S3 API keeps answering the listing of {prefix or 'the volume'} with pages it already sent "
                f"(after {len(found)} files); it may still be computing checksums of files written by the pod. "
                "Wait a few minutes and run the command again."
            )
        nxt = resp.get("NextContinuationToken")
        if nxt and nxt not in seen_tokens and advanced:
            seen_tokens.add(nxt)
            token, start_after = nxt, None
            continue
        # A repeated (or missing) token: continue after the last key we have, after a pause.
        token, start_after = None, last_key
        time.sleep(STALL_PAUSE_S * max(1, stalls))
    return found


def _files(found: dict[str, RemoteObject]) -> list[RemoteObject]:
    # A directory entry listed without its trailing slash is still a folder: a key that other keys are
    # below is never a file (S3 keys cannot be both on a filesystem-backed volume).
    folders = {k[:i] for k in found for i in range(len(k)) if k[i] == "/"}
    return [found[k] for k in sorted(found) if k not in folders]
