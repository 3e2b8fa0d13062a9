"""The incremental rule of the S3 sync (runner/volume/plan.py), without a server."""

from __future__ import annotations

from pathlib import Path

from runner.volume.listing import RemoteObject
from runner.volume.plan import LocalFile, Manifest, ManifestEntry, make_plan, walk

T = 1_700_000_000


def _local(rel: str, size: int = 10, mtime: float = T) -> LocalFile:
    return LocalFile(rel, Path("/x") / rel, size, int(mtime * 1e9))


def test_unchanged_needs_same_size_and_an_object_not_older_than_the_file():
    remote = [
        RemoteObject("data/a", 10, T + 5, "e1"),
        RemoteObject("data/b", 11, T + 5, "e2"),
        RemoteObject("data/c", 10, T - 60, "e3"),
    ]
    plan = make_plan([_local("a"), _local("b"), _local("c"), _local("d")], remote, "data", {}, delete=False)
    assert plan.unchanged == ["data/a"]
    assert [u.key for u in plan.uploads] == ["data/b", "data/c", "data/d"]  # size, older object, missing


def test_the_manifest_decides_when_this_machine_uploaded_it():
    remote = [
        RemoteObject("data/a", 10, T - 3600, "e1"),
        RemoteObject("data/b", 10, T + 3600, "e2"),
        RemoteObject("data/c", 10, T + 3600, "other"),
    ]
    manifest = {
        "data/a": ManifestEntry(10, int(T * 1e9), "e1"),  # this version went up (clock skew ok)
        "data/b": ManifestEntry(10, int((T - 10) * 1e9), "e2"),  # the local file changed since
        "data/c": ManifestEntry(10, int(T * 1e9), "e3"),
    }  # someone replaced the object
    plan = make_plan([_local("a"), _local("b"), _local("c")], remote, "data", manifest, delete=False)
    assert plan.unchanged == ["data/a"]
    assert [u.key for u in plan.uploads] == ["data/b", "data/c"]


def test_delete_only_inside_the_prefix_and_only_when_asked():
    remote = [RemoteObject("data/sub/a", 10, T + 5), RemoteObject("data/sub/old", 1, T)]
    assert make_plan([_local("a")], remote, "data/sub", {}, delete=False).deletes == []
    assert make_plan([_local("a")], remote, "data/sub", {}, delete=True).deletes == ["data/sub/old"]


def test_walk_skips_partial_downloads_and_symlinks(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.bin").write_bytes(b"12345")
    (tmp_path / "d" / ".x.bin.rtpart").write_bytes(b"12")
    (tmp_path / ".DS_Store").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "d" / "x.bin")
    assert [(f.rel, f.size) for f in walk(tmp_path)] == [("d/x.bin", 5)]


def test_manifest_round_trip_is_private(tmp_path):
    m = Manifest(tmp_path / "s3" / "vol.json")
    m.record("data/a", 3, 7, "etag")
    m.save()
    assert Manifest(tmp_path / "s3" / "vol.json").entries == {"data/a": ManifestEntry(3, 7, "etag")}
    assert (tmp_path / "s3" / "vol.json").stat().st_mode & 0o077 == 0
