"""Names that come from the pod or the volume, made into paths on this machine: one rule for every download.

A file name in an SFTP listing, an S3 key or a folder named in the pod's state file is data chosen by
whoever controls the pod (it runs the training repo and its dependencies as root). Before it becomes a
path under a local destination it must be a plain relative path: '/'-separated parts, none of them
empty, '.' or '..', no NUL, no backslash, not absolute; and the path it names, with the symlinks that
already exist on this machine resolved, must stay inside the destination. The files written there are
opened with O_NOFOLLOW, so a symlink put where a file is about to be written is not followed.

Used by every source of `runner pull` (S3 and SFTP), its checkpoint staging and the TensorBoard event
cache. The AWS CLI skips such keys; scp and rsync fixed the same class (CVE-2019-6111, CVE-2024-12087).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from runner.errors import UsageError

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeName(ValueError):
    """A name from the pod or the volume that must not become a local path."""

    def __init__(self, name: str, why: str):
        super().__init__(f"{name!r}: {why}")
        self.name, self.why = name, why


def check_relative(name: str) -> str:
    """`name` when it is a plain relative '/'-separated path, else UnsafeName saying why."""
    if not name:
        raise UnsafeName(name, "empty name")
    if "\0" in name:
        raise UnsafeName(name, "contains a NUL byte")
    if "\\" in name:
        raise UnsafeName(name, "contains a backslash")
    if name.startswith("/"):
        raise UnsafeName(name, "absolute path")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise UnsafeName(name, f"has a {part!r} component" if part else "has an empty component")
    return name


def check_component(name: str) -> str:
    """`name` when it is one safe path component (a name in a folder listing: no '/' in it either)."""
    if "/" in name:
        raise UnsafeName(name, "a name in a folder listing with a '/' in it")
    return check_relative(name)


def local_path(dest: Path, name: str) -> Path:
    """dest/name for a name from the pod or the volume; UnsafeName when it is not a plain relative path
    or would land outside dest (through a symlink that exists here)."""
    check_relative(name)
    base = dest.resolve()
    path = base.joinpath(*name.split("/"))
    if not path.parent.resolve().is_relative_to(base):
        raise UnsafeName(name, f"leads outside {dest} (through a symlink)")
    return path


def open_for_write(path: Path, *, append: bool = False):
    """A binary file object for writing a downloaded file: created 0644 if missing, never through a
    symlink (O_NOFOLLOW: ELOOP instead); truncated unless append."""
    flags = _CREATE | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UsageError(
                f"{path} is a symlink; a download never writes through one. Remove it and run the command again."
            ) from None
        raise
    return os.fdopen(fd, "ab" if append else "wb")


__all__ = ["UnsafeName", "check_component", "check_relative", "local_path", "open_for_write"]
