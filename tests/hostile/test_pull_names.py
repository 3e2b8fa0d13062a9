"""Finding 1: names that come back from the pod (SFTP listings) or the volume (S3 keys) never write
outside the destination, not even into the checkpoint's staging folder (runner/safepath.py)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from runner import cli
from runner.errors import UsageError
from runner.remote.hostkeys import expect_host_key
from runner.remote.ssh import SshConnection, SshTarget
from runner.safepath import UnsafeName, check_relative, local_path, open_for_write
from runner.volume.fetch import pull_newest_checkpoint, pull_tree
from runner.volume.transfer import partial_path
from standins.hostile_sftp import HostileSftp
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)
from tests.runner.volume.conftest import s3_env  # noqa: F401  (fixture)

PWNED = b"written by a hostile pod\n"


def safetensors(size: int = 400) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(size)


def checkpoint_files(step: int) -> dict[str, bytes]:
    return {"model.safetensors": safetensors(), "trainer_state.json": json.dumps({"global_step": step}).encode()}


@pytest.mark.parametrize(
    "name",
    ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/.", "", "a\0b", "a\\..\\b", ".."],
)
def test_the_rule_refuses_every_name_that_is_not_a_plain_relative_path(name):
    with pytest.raises(UnsafeName):
        check_relative(name)


def test_the_rule_refuses_a_path_that_leaves_the_destination_through_a_local_symlink(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(tmp_path / "elsewhere")
    assert local_path(dest, "a/b.bin") == dest.resolve() / "a" / "b.bin"
    with pytest.raises(UnsafeName, match="outside"):
        local_path(dest, "link/b.bin")


def test_a_download_never_writes_through_a_symlink_planted_at_its_partial_file(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    partial = partial_path(tmp_path / "dest" / "model.safetensors")
    partial.parent.mkdir()
    partial.symlink_to(victim)
    with pytest.raises(UsageError, match="symlink"):
        with open_for_write(partial, append=True) as fh:
            fh.write(PWNED)
    assert victim.read_bytes() == b"precious"


# ---- over SFTP: a pod whose SFTP server lists what no file system holds ---------------------------------
def hostile_checkpoint_listing(tmp_path: Path) -> HostileSftp:
    out = "/workspace/outputs/run1"
    ckpt = checkpoint_files(20)
    escape = str(tmp_path / "absolute-escape")
    return HostileSftp(
        listings={
            out: {"checkpoint-20": None, "checkpoint-30": None},
            f"{out}/checkpoint-20": {**ckpt, "../../../../sftp-escape": PWNED, escape: PWNED, "..": None},
            f"{out}/checkpoint-30": {"trainer_state.json": b"{", "a/../../../../../deep-escape": PWNED},
            f"{out}/checkpoint-20/..": {"checkpoint-20": None},
        },
    )


def sftp_source(server: HostileSftp, key_path: str):
    from runner.companions.pull import SftpSource

    conn = SshConnection.open(
        SshTarget("127.0.0.1", server.port, "root", key_path), host_key_check=expect_host_key(server.host_key_line)
    )
    return conn, SftpSource(conn)


def deep(tmp_path: Path) -> Path:
    """A destination deep enough that every `..` escape of these tests still lands inside tmp_path."""
    dest = tmp_path.joinpath("home", *"123456789", "pulls")
    dest.mkdir(parents=True)
    return dest


def escapes(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*escape*") if p.is_file()]


def test_hostile_sftp_names_in_a_checkpoint_are_refused_before_staging(sshd, tmp_path, capfd):
    dest = deep(tmp_path)
    with hostile_checkpoint_listing(tmp_path) as server:
        conn, source = sftp_source(server, sshd.key_path)
        try:
            pulled = pull_newest_checkpoint(source, "/workspace/outputs/run1", dest, progress=False)
        finally:
            conn.close()
    assert escapes(tmp_path) == []
    assert pulled.path == dest / "checkpoint-20"
    assert sorted(p.name for p in pulled.path.iterdir()) == ["model.safetensors", "trainer_state.json"]
    refused = " ".join(source.refused + pulled.refused)
    assert "sftp-escape" in refused and "absolute-escape" in refused  # (paramiko drops '..' entries itself)
    assert not [p for p in server.opened if "escape" in p]  # never even read


def test_hostile_sftp_names_in_a_folder_pull_are_refused(sshd, tmp_path):
    dest = deep(tmp_path)
    server = HostileSftp(listings={"/workspace/run": {"ok.txt": b"ok", "x/../../../../sftp-escape": PWNED}})
    with server:
        conn, source = sftp_source(server, sshd.key_path)
        try:
            pulled = pull_tree(source, "/workspace/run", dest, progress=False)
        finally:
            conn.close()
    assert escapes(tmp_path) == []
    assert (dest / "run" / "ok.txt").read_bytes() == b"ok"
    assert "sftp-escape" in " ".join(source.refused + pulled.refused)


# ---- through S3: keys that are not paths ----------------------------------------------------------------
def test_hostile_s3_keys_never_write_outside_the_destination(s3_env, tmp_path, capfd):  # noqa: F811
    s3 = s3_env.start("EXITED")
    ws = s3_env.pod_env.workspace
    out = ws / "outputs" / "run1"
    for name, data in checkpoint_files(20).items():
        (out / "checkpoint-20").mkdir(parents=True, exist_ok=True)
        (out / "checkpoint-20" / name).write_bytes(data)
    (ws / ".runner").mkdir()
    (ws / ".runner" / "state.json").write_text(json.dumps({"run_id": "r1", "output_dir": str(out)}))
    s3.keys()  # the stand-in takes in the volume's files first
    put = s3.backend().put_object
    for key in (
        "outputs/run1/checkpoint-20/../../../../../s3-escape",
        f"outputs/run1/checkpoint-20/{tmp_path}/s3-abs-escape",
        "outputs/run1/checkpoint-30/../../../../../s3-stage-escape",
        "outputs/run1/checkpoint-30/trainer_state.json",
    ):
        put(Bucket=s3.volume_id, Key=key, Body=PWNED)
    dest = deep(tmp_path)
    assert cli.main(["pull", "--dest", str(dest)]) == 0
    err = capfd.readouterr().err
    assert escapes(tmp_path) == []
    assert sorted(p.name for p in (dest / "checkpoint-20").iterdir()) == ["model.safetensors", "trainer_state.json"]
    assert "s3-escape" in err and "not a safe relative path" in err


def test_hostile_s3_keys_never_leave_the_tensorboard_cache(s3_env, tmp_path, capfd):  # noqa: F811
    from runner.volume.board import fetch_events
    from runner.volume.s3 import VolumeClient
    from runner.volume.s3_config import resolve

    s3 = s3_env.start("EXITED")
    logdir = s3_env.pod_env.workspace / "repo" / "logs"
    logdir.mkdir(parents=True)
    (logdir / "events.out.tfevents.1").write_bytes(b"event")
    s3.keys()
    s3.backend().put_object(Bucket=s3.volume_id, Key="repo/logs/../../../../tb-escape.tfevents", Body=PWNED)
    from runner.pod.stack import read_outputs_for
    from runner.settings import load_settings

    settings = load_settings()
    vs = resolve(settings, read_outputs_for(settings))
    cache = deep(tmp_path)
    assert fetch_events(VolumeClient(vs), vs, "repo/logs", cache) == 1
    assert (cache / "events.out.tfevents.1").read_bytes() == b"event"
    assert not list(tmp_path.rglob("tb-escape*"))
    assert "tb-escape" in capfd.readouterr().err
