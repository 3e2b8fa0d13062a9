"""`runner pull`'s work: bring a folder, a file or the newest complete checkpoint home, from any Source
(the volume through S3 here; the pod over SFTP in runner/companions/pull.py).

Every name from the volume (S3 key, SFTP listing) goes through runner/safepath.py's rule before it
becomes a local path: one that is absolute, has a `..` part or would land outside the destination is
left out and reported (`Pulled.refused`), never written, not even into the checkpoint's staging folder.

Never a partial result under its real name: files arrive as hidden `.<name>.rtpart` and are renamed
when their size is the listed one; a checkpoint is assembled in `.<checkpoint-N>.rtpull/` and renamed
to checkpoint-N only after the launcher's own completeness rule (remote/podside/checkpoints.py, the
rule that picks what training resumes from) accepts the local copy. An interrupted pull is resumed
by the next one: finished files are kept, partial ones continue.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from remote.podside.checkpoints import checkpoint_problem
from remote.podside.contract import CHECKPOINT_PREFIX
from runner.errors import UsageError
from runner.safepath import UnsafeName, local_path
from runner.volume.transfer import Progress, partial_path

_STEP_RE = re.compile(re.escape(CHECKPOINT_PREFIX) + r"(\d{1,15})$")
STAGING_SUFFIX = ".rtpull"


@dataclass(frozen=True)
class RemoteFile:
    rel: str  # below the listed folder, '/'-separated ('' when the path is the file itself)
    size: int
    mtime: float | None = None


class Source(Protocol):
    where: str  # "through S3" / "over SSH", for messages
    refused: list[str]  # names its listings held that are not safe ones ("<name>: <why>"), left out

    def files(self, path: str) -> list[RemoteFile]:
        """Every file under `path` on the pod's view of the volume (or the file itself); [] if none."""
        ...

    def download(self, path: str, items: Sequence[tuple[RemoteFile, Path]], progress: Progress) -> None:
        """Each remote file (under `path`) to its local path, through partial_path() and a rename."""
        ...


@dataclass
class Pulled:
    path: Path
    files: int
    bytes: int
    skipped: list[str] = field(default_factory=list)  # newer checkpoints left out: "<name>: <why>"
    already_here: bool = False
    refused: list[str] = field(default_factory=list)  # names from the volume not written: "<name>: <why>"


def placed(files: Sequence[RemoteFile], root: Path, refused: list[str]) -> list[tuple[RemoteFile, Path]]:
    """Each file with its local path under root (the file itself is root when its rel is ''); a name
    that is not a safe relative path is left out and noted in `refused`."""
    out = []
    for f in files:
        if f.rel == "":
            out.append((f, root))
            continue
        try:
            out.append((f, local_path(root, f.rel)))
        except UnsafeName as e:
            refused.append(f"{e.name!r}: {e.why}")
    return out


def _missing(items: Sequence[tuple[RemoteFile, Path]]) -> list[tuple[RemoteFile, Path]]:
    out = []
    for f, local in items:
        try:
            if local.stat().st_size == f.size:
                continue
        except OSError:
            pass
        out.append((f, local))
    return out


def pull_tree(source: Source, path: str, dest: Path, *, progress: bool | None = None) -> Pulled:
    """A file or folder on the volume to dest/<its name>."""
    listing = source.files(path)
    if not listing:
        raise UsageError(
            f"{path} is not on the volume (or is an empty folder); `python -m runner status` shows "
            "the run's output_dir."
        )
    name = PurePosixPath(path.rstrip("/")).name
    target = dest / name
    refused: list[str] = []
    if len(listing) == 1 and listing[0].rel == "":
        items = [(listing[0], target)]
    else:
        items = placed([f for f in listing if f.rel], target, refused)
    todo = _missing(items)
    _fetch(source, path, todo, progress)
    return Pulled(target, len(items), sum(f.size for f, _ in items), already_here=not todo, refused=refused)


def _fetch(source: Source, path: str, todo: Sequence[tuple[RemoteFile, Path]], progress: bool | None) -> None:
    if not todo:
        return
    bar = Progress(sum(f.size for f, _ in todo), len(todo), enabled=progress, verb="received")
    source.download(path, todo, bar)


def checkpoints_in(listing: Sequence[RemoteFile]) -> dict[int, list[RemoteFile]]:
    """step -> the files of <output_dir>/checkpoint-<step>/ (rel below the checkpoint folder)."""
    found: dict[int, list[RemoteFile]] = {}
    for f in listing:
        head, _, rest = f.rel.partition("/")
        m = _STEP_RE.match(head)
        if m and rest:
            found.setdefault(int(m.group(1)), []).append(RemoteFile(rest, f.size, f.mtime))
    return found


def pull_newest_checkpoint(source: Source, output_dir: str, dest: Path, *, progress: bool | None = None) -> Pulled:
    """The newest checkpoint-N under output_dir that is complete, to dest/checkpoint-N."""
    by_step = checkpoints_in(source.files(output_dir))
    if not by_step:
        raise UsageError(
            f"no checkpoint-N folder under {output_dir} on the volume yet; training writes them every "
            "save_steps (`python -m runner status` shows the run)."
        )
    skipped: list[str] = []
    refused: list[str] = []
    for step in sorted(by_step, reverse=True):
        name = f"{CHECKPOINT_PREFIX}{step}"
        final = dest / name
        staging = dest / f".{name}{STAGING_SUFFIX}"
        rejected: list[str] = []
        here = placed(by_step[step], final, rejected)
        files = [f for f, _ in here]
        if final.is_dir() and not _missing(here) and checkpoint_problem(str(final), step) is None:
            return Pulled(final, len(files), sum(f.size for f in files), skipped, already_here=True, refused=rejected)
        refused += [f"{name}/{note}" for note in rejected]
        if not any(f.rel == "trainer_state.json" for f in files):
            skipped.append(f"{name}: trainer_state.json missing (killed mid-save?)")
            continue
        remote = f"{output_dir.rstrip('/')}/{name}"
        _fetch(source, remote, _missing(placed(files, staging, [])), progress)
        why = checkpoint_problem(str(staging), step)
        if why is not None:
            skipped.append(f"{name}: {why}")
            shutil.rmtree(staging, ignore_errors=True)
            continue
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        return Pulled(final, len(files), sum(f.size for f in files), skipped, refused=refused)
    raise UsageError(
        f"no complete checkpoint under {output_dir} on the volume ({'; '.join(skipped)}); "
        "let training save one more, then pull again."
    )


class S3Source:
    """The volume through RunPod's S3 API (no pod)."""

    where = "through RunPod's S3 API (no pod)"

    def __init__(self, client):
        self.client = client  # runner.volume.s3.VolumeClient
        self.refused: list[str] = []  # keys are whole paths: placed() checks them

    def files(self, path: str) -> list[RemoteFile]:
        key = self.client.vs.key_for(path)
        base = f"{key}/"
        inside = [
            RemoteFile(o.key[len(base) :], o.size, o.last_modified)
            for o in self.client.list(key)
            if o.key.startswith(base)
        ]
        if inside:  # a folder (checked first: RunPod may answer HEAD on a folder too)
            return inside
        head = self.client.head(key)
        if head is None:
            return []
        modified = head.get("LastModified")
        return [RemoteFile("", int(head.get("ContentLength", 0)), modified.timestamp() if modified else None)]

    def download(self, path: str, items: Sequence[tuple[RemoteFile, Path]], progress: Progress) -> None:
        from runner.volume.transfer import Download, transfer_all

        key = self.client.vs.key_for(path)
        tasks = [Download(key=key if f.rel == "" else f"{key}/{f.rel}", local=local, size=f.size) for f, local in items]
        transfer_all(self.client, downloads=tasks, progress=progress)


__all__ = [
    "Pulled",
    "RemoteFile",
    "S3Source",
    "Source",
    "partial_path",
    "placed",
    "pull_newest_checkpoint",
    "pull_tree",
]
