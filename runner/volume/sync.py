"""`runner sync` through the volume's S3 API: no pod, no RunPod API call, nothing billed but the volume.

Same semantics as the rsync path (runner/companions/sync.py plan(): the contents of PATH go to
<workspace>/data/<PATH's place in DATA_DIR>), incremental by size+mtime (runner/volume/plan.py),
`client.parallel` transfers at a time, multipart above RunPod's 500 MB PutObject limit, --delete with
one DeleteObject per file (RunPod has no DeleteObjects), --dry-run, a progress bar on a terminal.
Interrupting is safe: an object appears only when its upload completed (multipart ones are aborted),
finished files are in the manifest, and a rerun sends only what is still missing.
"""

from __future__ import annotations

from pathlib import Path

from runner.errors import EXIT_INTERRUPTED, UsageError
from runner.output import plain as _say
from runner.output import plural
from runner.volume.plan import Manifest, make_plan, walk
from runner.volume.s3_config import Unavailable, VolumeS3, resolve, say_hint_once
from runner.volume.transfer import Cancelled, Progress, Upload, transfer_all

# Transfers at a time, each on a kept-alive connection: enough to fill a 200 Mbit/s link 40 ms away
# with 20-300 KB files (s5cmd runs 256 workers but Go keeps 2 idle connections per host, so most of its
# requests pay a new connection; aws s3 sync runs 10, rclone 4).
PARALLEL = 32


def manifest_path(settings, vs: VolumeS3) -> Path:
    return settings.paths.stack_dir / "s3" / f"{vs.bucket}.json"


def choose(settings, outputs, via: str | None, what: str) -> VolumeS3 | None:
    """The S3 coordinates when the command should go through S3: `via` None (auto) or "s3" (forced,
    an error when unavailable); None when it should take the pod (saying once what S3 would save)."""
    if via == "ssh":
        return None
    found = resolve(settings, outputs)
    if isinstance(found, Unavailable):
        if via == "s3":
            raise UsageError(f"--via s3: the volume's S3 API is not available: {found.detail}.")
        say_hint_once(found, what, settings)
        return None
    return found


def sync_via_s3(
    settings, vs: VolumeS3, source: Path, dest: str, *, dry_run: bool, delete: bool, progress: bool | None = None
) -> int:
    """Upload the contents of `source` to the folder `dest` on the pod's view of the volume."""
    from runner.volume.s3 import VolumeClient

    client = VolumeClient(vs, parallel=PARALLEL)
    prefix = vs.key_for(dest)
    local = walk(source)
    base = f"{prefix}/" if prefix else ""
    remote = client.list(prefix, expected=[base + f.rel for f in local])
    manifest = Manifest(manifest_path(settings, vs))
    plan = make_plan(local, remote, prefix, manifest.entries, delete=delete)
    _say(
        f"sync {source}/ -> {dest}/ through RunPod's S3 API (volume {vs.bucket}, {vs.region}; no pod started): "
        f"{plural(len(plan.uploads), 'file')} to upload ({plan.upload_bytes / 1e6:.1f} MB), {len(plan.unchanged)} unchanged"
        + (f", {len(plan.deletes)} to delete" if delete else "")
    )
    if dry_run:
        for u in plan.uploads:
            print(f"upload {u.key} ({u.size} bytes)")
        for key in plan.deletes:
            print(f"delete {key}")
        _say("dry run: nothing was changed.")
        return 0

    def done(task: object, etag: str) -> None:
        if isinstance(task, Upload):
            manifest.record(task.key, task.size, task.mtime_ns, etag)

    bar = Progress(plan.upload_bytes, len(plan.uploads), enabled=progress)
    try:
        if plan.uploads:
            transfer_all(client, plan.uploads, progress=bar, on_done=done)
        for key in plan.deletes:
            client.delete(key)
            manifest.forget(key)
            print(f"deleted {key}")
    except (KeyboardInterrupt, Cancelled):
        _say(
            "sync interrupted; run it again to continue (finished files are skipped, unfinished uploads were "
            "aborted and start again)."
        )
        return EXIT_INTERRUPTED
    finally:
        manifest.save()
    _say(
        f"synced {source}/ -> {dest}/ ({len(plan.uploads)} uploaded"
        + (f", {len(plan.deletes)} deleted" if delete else "")
        + "); the pod was not started."
    )
    return 0
