"""Uploads and downloads between this machine and the volume: parallel, multipart, interruptible.

- Uploads below PUT_LIMIT (RunPod: PutObject < 500 MB) are one PutObject; bigger ones are multipart
  with parts of PART_SIZE (at most 500 MB each, at most 10,000 parts). A failed or interrupted multipart
  upload is aborted, so its parts do not linger in RunPod's `.s3compat_uploads/`.
- The local file's mtime travels in the object's metadata (s3.MTIME_META); downloads set it back.
- Downloads go (never through a symlink: runner/safepath.py) to a hidden `.<name>.rtpart` next to the target and are renamed only when the size is
  the one the listing promised: no partial file ever has the real name. A rerun continues an
  interrupted download from where its .rtpart ends (a ranged GET).
- Ctrl-C sets a cancel event the workers check between chunks and parts; run_all waits for them to
  clean up, then re-raises KeyboardInterrupt.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from runner.errors import VolumeError
from runner.safepath import open_for_write
from runner.volume.s3 import MTIME_META, VolumeClient, translate
from runner.volume.s3_config import PUT_LIMIT as RUNPOD_PUT_LIMIT

PUT_LIMIT = RUNPOD_PUT_LIMIT  # module-level so tests (and the stand-in's scaled-down cap) can lower it
PART_SIZE = 64 * 1024 * 1024
MAX_PARTS = 10_000
CHUNK = 1024 * 1024
PART_WORKERS = 4
PARTIAL_SUFFIX = ".rtpart"


class Cancelled(Exception):
    """The transfer was interrupted (Ctrl-C); already-finished files stay."""


@dataclass(frozen=True)
class Upload:
    local: Path
    key: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Download:
    key: str
    local: Path
    size: int
    mtime: float | None = None  # epoch seconds to set on the file (None: the object's metadata, else now)


class Progress:
    """Bytes and files done; a one-line bar on stderr when it is a terminal."""

    def __init__(self, total_bytes: int, total_files: int, *, enabled: bool | None = None, verb: str = "sent"):
        self.total_bytes, self.total_files, self.verb = total_bytes, total_files, verb
        self.done_bytes = 0
        self.done_files = 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._lock = threading.Lock()
        self._shown = 0.0
        self._start = time.monotonic()

    def add(self, n: int) -> None:
        with self._lock:
            self.done_bytes += n
            self._draw()

    def file_done(self) -> None:
        with self._lock:
            self.done_files += 1
            self._draw(force=self.done_files == self.total_files)

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._shown < 0.2:
            return
        self._shown = now
        rate = self.done_bytes / max(now - self._start, 1e-6)
        pct = 100.0 * self.done_bytes / self.total_bytes if self.total_bytes else 100.0
        sys.stderr.write(
            f"\r  {_mb(self.done_bytes)} of {_mb(self.total_bytes)} {self.verb} ({pct:3.0f}%), "
            f"{self.done_files}/{self.total_files} files, {_mb(rate)}/s   "
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def part_size_for(size: int) -> int:
    size_per_part = max(PART_SIZE, -(-size // MAX_PARTS))
    return min(size_per_part, RUNPOD_PUT_LIMIT)


def upload(client: VolumeClient, task: Upload, progress: Progress, cancel: threading.Event) -> str:
    """Send one file; returns the object's ETag."""
    meta = {MTIME_META: str(task.mtime_ns)}
    if task.size < PUT_LIMIT:
        if cancel.is_set():
            raise Cancelled()
        with open(task.local, "rb") as fh:
            resp = client._call(
                f"uploading {task.key}",
                client.s3.put_object,
                Key=task.key,
                Body=fh,
                ContentLength=task.size,
                Metadata=meta,
            )
        progress.add(task.size)
        return str(resp.get("ETag", "")).strip('"')
    return _multipart(client, task, meta, progress, cancel)


def _multipart(client: VolumeClient, task: Upload, meta: dict, progress: Progress, cancel: threading.Event) -> str:
    s3, bucket = client.s3, client.vs.bucket
    part = min(part_size_for(task.size), max(1, PUT_LIMIT))
    up = client._call(f"starting the upload of {task.key}", s3.create_multipart_upload, Key=task.key, Metadata=meta)
    upload_id = up["UploadId"]
    count = -(-task.size // part)

    def send(n: int) -> dict:
        if cancel.is_set():
            raise Cancelled()
        with open(task.local, "rb") as fh:
            fh.seek((n - 1) * part)
            data = fh.read(part)
        resp = client._call(
            f"uploading part {n} of {task.key}",
            s3.upload_part,
            Key=task.key,
            UploadId=upload_id,
            PartNumber=n,
            Body=data,
        )
        progress.add(len(data))
        return {"PartNumber": n, "ETag": resp["ETag"]}

    try:
        with ThreadPoolExecutor(max_workers=PART_WORKERS) as pool:
            parts = run_all(pool, [functools.partial(send, n) for n in range(1, count + 1)], cancel)
        if cancel.is_set():  # Ctrl-C came while the last parts were in flight: abort, do not complete
            raise Cancelled()
        done = client._call(
            f"finishing the upload of {task.key}",
            s3.complete_multipart_upload,
            Key=task.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": sorted(parts, key=lambda p: p["PartNumber"])},
        )
    except BaseException:
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=task.key, UploadId=upload_id)
        except Exception:
            pass  # best effort: RunPod cleans .s3compat_uploads/ on abort or completion only
        raise
    return str(done.get("ETag", "")).strip('"')


def partial_path(local: Path) -> Path:
    return local.with_name(f".{local.name}{PARTIAL_SUFFIX}")


def download(client: VolumeClient, task: Download, progress: Progress, cancel: threading.Event) -> None:
    tmp = partial_path(task.local)
    task.local.parent.mkdir(parents=True, exist_ok=True)
    have = tmp.stat().st_size if tmp.exists() else 0
    if have > task.size:
        tmp.unlink()
        have = 0
    progress.add(have)
    meta_mtime: float | None = None
    if have < task.size or task.size == 0:
        kw = {"Range": f"bytes={have}-"} if have else {}
        resp = client._call(f"downloading {task.key}", client.s3.get_object, Key=task.key, **kw)
        raw = (resp.get("Metadata") or {}).get(MTIME_META)
        meta_mtime = int(raw) / 1e9 if raw and raw.isdigit() else None
        body = resp["Body"]
        try:
            with open_for_write(tmp, append=bool(have)) as fh:
                while True:
                    if cancel.is_set():
                        raise Cancelled()
                    try:
                        chunk = body.read(CHUNK)
                    except Exception as e:
                        raise translate(e, client.vs, f"downloading {task.key}") from None
                    if not chunk:
                        break
                    fh.write(chunk)
                    progress.add(len(chunk))
        finally:
            body.close()
    got = tmp.stat().st_size
    if got != task.size:
        raise VolumeError(
            f"{task.key} arrived with {got} of {task.size} bytes (it changed on the volume while "
            "being read?); run the command again: the partial file is resumed or replaced."
        )
    os.replace(tmp, task.local)
    when = task.mtime if task.mtime is not None else meta_mtime
    if when is not None:
        os.utime(task.local, (when, when))


def run_all(pool: ThreadPoolExecutor, jobs: Sequence[Callable[[], object]], cancel: threading.Event) -> list:
    """Run the jobs on the pool; the first failure cancels the rest. Ctrl-C (in the calling thread) sets
    `cancel`, waits for the workers to stop, and re-raises."""
    futures: list[Future] = [pool.submit(job) for job in jobs]
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                cancel.set()
                break
    except KeyboardInterrupt:
        cancel.set()
        for f in futures:
            f.cancel()
        wait(futures)
        raise
    for f in futures:
        f.cancel()
    wait(futures)
    errors: list[BaseException] = [e for f in futures if not f.cancelled() and (e := f.exception()) is not None]
    real = [e for e in errors if not isinstance(e, Cancelled)]
    if real:
        raise real[0]
    if errors:
        raise errors[0]
    return [f.result() for f in futures]


def transfer_all(
    client: VolumeClient,
    uploads: Sequence[Upload] = (),
    downloads: Sequence[Download] = (),
    *,
    progress: Progress,
    on_done: Callable[[object, str], None] | None = None,
) -> None:
    """Every upload and download, `client.parallel` at a time; on_done(task, etag) after each (uploads:
    the new object's ETag, downloads: '')."""
    cancel = threading.Event()

    def job(task):
        def go():
            etag = ""
            if isinstance(task, Upload):
                etag = upload(client, task, progress, cancel)
            else:
                download(client, task, progress, cancel)
            progress.file_done()
            if on_done is not None:
                on_done(task, etag)

        return go

    with ThreadPoolExecutor(max_workers=max(1, client.parallel)) as pool:
        try:
            run_all(pool, [job(t) for t in (*uploads, *downloads)], cancel)
        finally:
            progress.close()
