"""What an S3 sync has to do: the files to upload, to skip, and (with --delete) to delete.

A file is unchanged, and skipped, when the volume has it with the same size and
  - the manifest (what this machine uploaded: key -> local size, mtime_ns and the object's ETag) says
    this very local version went up and the object is still the one it made, or
  - without a manifest entry (first S3 sync, or files rsync put there): the object is not older than the
    local file (rsync -a keeps the local mtime; an upload is newer than the file it sent).
Otherwise it is uploaded. Like rsync, size+mtime and no checksums: nothing has to be read to skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runner.paths import write_private
from runner.volume.listing import RemoteObject
from runner.volume.transfer import PARTIAL_SUFFIX, Upload

SKIP_NAMES = (".DS_Store",)
MTIME_SLACK_S = 2.0  # filesystems round mtimes; S3 LastModified has whole seconds


@dataclass(frozen=True)
class LocalFile:
    rel: str  # path below the synced folder, '/'-separated
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ManifestEntry:
    size: int
    mtime_ns: int
    etag: str


@dataclass
class SyncPlan:
    uploads: list[Upload] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)  # keys

    @property
    def upload_bytes(self) -> int:
        return sum(u.size for u in self.uploads)


def walk(root: Path) -> list[LocalFile]:
    """Regular files under root (symlinks to files followed, like rsync -a does not: they are skipped)."""
    out: list[LocalFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name in SKIP_NAMES or name.endswith(PARTIAL_SUFFIX):
                continue
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            if not p.is_file() or p.is_symlink():
                continue
            out.append(LocalFile(p.relative_to(root).as_posix(), p, st.st_size, st.st_mtime_ns))
    return out


def make_plan(
    local: Iterable[LocalFile],
    remote: Iterable[RemoteObject],
    prefix: str,
    manifest: Mapping[str, ManifestEntry],
    *,
    delete: bool,
) -> SyncPlan:
    """prefix: the key of the destination folder ('' or 'data/...', no trailing slash)."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    remote_by_key = {r.key: r for r in remote}
    plan = SyncPlan()
    wanted: set[str] = set()
    for f in local:
        key = base + f.rel
        wanted.add(key)
        r = remote_by_key.get(key)
        if r is not None and r.size == f.size and _same(f, r, manifest.get(key)):
            plan.unchanged.append(key)
        else:
            plan.uploads.append(Upload(local=f.path, key=key, size=f.size, mtime_ns=f.mtime_ns))
    if delete:
        plan.deletes = sorted(k for k in remote_by_key if k not in wanted)
    return plan


def _same(f: LocalFile, r: RemoteObject, entry: ManifestEntry | None) -> bool:
    if entry is not None and entry.size == f.size and entry.mtime_ns == f.mtime_ns:
        return not entry.etag or not r.etag or entry.etag == r.etag
    if entry is not None:
        return False  # the local file changed since this machine uploaded it
    return r.last_modified + MTIME_SLACK_S >= f.mtime_ns / 1e9


# ---------------------------------------------------------------- the manifest
class Manifest:
    """key -> ManifestEntry of what this machine uploaded to one volume, in the runner's state directory."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, ManifestEntry] = {}
        try:
            data = json.loads(path.read_text())
            for k, v in (data.get("files") or {}).items():
                self.entries[k] = ManifestEntry(int(v[0]), int(v[1]), str(v[2]))
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            pass

    def record(self, key: str, size: int, mtime_ns: int, etag: str) -> None:
        self.entries[key] = ManifestEntry(size, mtime_ns, etag)

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)

    def save(self) -> None:
        data = {"files": {k: [e.size, e.mtime_ns, e.etag] for k, e in sorted(self.entries.items())}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_private(self.path, json.dumps(data))
        except OSError:
            pass  # no manifest: the next sync falls back to the LastModified rule
