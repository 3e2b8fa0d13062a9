"""Finding 6: an on-path attacker at a resume used to become "the pod": host keys were trusted on first
use again at every start, silently, and pinned before authentication. Now the pod keeps its host key
on the volume across restarts (the start command restores it before sshd starts), a pod known to keep
it is refused a new one, a pin is made only once the server accepted our key, and every pin made is
printed with its fingerprint."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from remote.podside import bundle
from runner import cli
from runner.errors import SshAuthError
from runner.exitcodes import ExitCode
from runner.remote.hostkeys import HostKey, HostKeyStore
from runner.remote.ssh import SshConnection, SshTarget
from standins.runpod_s3 import RunPodS3
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)


# ---- the pod side: the start command keeps the host keys on the volume --------------------------------------
def container_start(tmp_path: Path, workspace: Path, etc_ssh: Path) -> str:
    """Run the start command `pulumi up` gives the pod as the container would (the image's /start.sh a
    stand-in that records which host keys sshd would find); returns that record."""
    seen = tmp_path / "keys-seen-by-start.sh"
    image_start = tmp_path / "start.sh"
    image_start.write_text(f"#!/bin/sh\ncat {etc_ssh}/ssh_host_ed25519_key.pub > {seen}\n")
    image_start.chmod(0o755)
    command = bundle.start_command(3600, str(workspace)).replace("--idle-seconds 3600 ", "--idle-seconds 0 ")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "RT_IMAGE_START": str(image_start),
        "RT_SSH_HOST_KEY_DIR": str(etc_ssh),
    }
    subprocess.run(shlex.split(command), env=env, check=True, timeout=60)
    return seen.read_text()


def test_the_pods_host_key_survives_a_restart(tmp_path):
    workspace, etc_ssh = tmp_path / "workspace", tmp_path / "etc-ssh"
    workspace.mkdir()
    first = container_start(tmp_path, workspace, etc_ssh)
    kept = workspace / ".runner" / "ssh-host-keys"
    assert (kept / "ssh_host_ed25519_key.pub").read_text() == first
    assert kept.stat().st_mode & 0o777 == 0o700 and (kept / "ssh_host_ed25519_key").stat().st_mode & 0o077 == 0
    for path in etc_ssh.iterdir():  # a stop wipes the container disk
        path.unlink()
    assert container_start(tmp_path, workspace, etc_ssh) == first
    assert (etc_ssh / "ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600


# ---- the runner side ----------------------------------------------------------------------------------------
def pins(pod_env) -> dict:  # noqa: F811
    return json.loads((pod_env.state_dir / "dev" / "known_hosts").read_text())["pins"]


def restart(pod_env, *, new_host_key: bool) -> None:  # noqa: F811
    client = pod_env.fake.client()
    client.stop_pod(pod_env.pod_id)
    if new_host_key:
        pod_env.sshd.rotate_host_key()
    client.resume_spot_pod(pod_env.pod_id, 0.3, 1)
    pod_env.fake.wait_for(lambda: pod_env.pod.status == "RUNNING", timeout=10)


def test_a_pod_that_keeps_its_key_is_refused_a_new_one_after_a_restart(pod_env, capfd):  # noqa: F811
    pod_env.add_pod("RUNNING")
    key = HostKey.from_line(pod_env.sshd.known_host_key)
    assert cli.main(["ssh-config"]) == 0
    assert f"pinned its SSH host key ssh-ed25519 {key.fingerprint}" in capfd.readouterr().err
    restart(pod_env, new_host_key=False)  # the start command restored the kept key
    assert cli.main(["ssh-config"]) == 0
    capfd.readouterr()
    assert pins(pod_env)[pod_env.pod_id]["kept"] is True
    restart(pod_env, new_host_key=True)  # an attacker on the path at this resume
    assert cli.main(["ssh-config"]) == ExitCode.SSH
    err = capfd.readouterr().err
    assert "keeps its host key across restarts" in err and "man-in-the-middle" in err
    assert pins(pod_env)[pod_env.pod_id]["key"] == key.base64


def test_a_pod_that_does_not_keep_its_key_is_repinned_loudly(pod_env, capfd):  # noqa: F811
    pod_env.add_pod("RUNNING")
    assert cli.main(["ssh-config"]) == 0
    capfd.readouterr()
    restart(pod_env, new_host_key=True)
    assert cli.main(["ssh-config"]) == 0
    new = HostKey.from_line(pod_env.sshd.known_host_key)
    assert f"restarted with a NEW SSH host key ssh-ed25519 {new.fingerprint}" in capfd.readouterr().err


def test_a_pin_is_made_only_once_the_server_accepted_our_key(sshd, tmp_path):
    store = HostKeyStore(tmp_path / "known_hosts")
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    target = SshTarget(sshd.host, sshd.port, sshd.user, str(stranger))  # a key this server refuses
    with pytest.raises(SshAuthError):
        SshConnection.open(target, host_key_check=store.policy("pod-1", started_at="2026-07-10T10:00:00Z"))
    assert store.get("pod-1") is None
    target = SshTarget(sshd.host, sshd.port, sshd.user, sshd.key_path)
    with SshConnection.open(target, host_key_check=store.policy("pod-1", started_at="2026-07-10T10:00:00Z")):
        pass
    assert store.get("pod-1").host_key == HostKey.from_line(sshd.known_host_key)


# ---- the first connection: the key the pod keeps on the volume, read through S3 -------------------------------
@pytest.fixture
def volume_s3(pod_env, monkeypatch):  # noqa: F811
    """RunPod's S3 API over the pod's volume (after add_pod: its volume id is in the outputs)."""

    def start() -> RunPodS3:
        volume_id = pod_env.stub.behaviour()["outputs"]["volume_id"]
        s3 = RunPodS3(volume_id=volume_id, volume_dir=pod_env.workspace).__enter__()
        started.append(s3)
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        return s3

    started: list[RunPodS3] = []
    yield start
    for s3 in started:
        s3.__exit__(None, None, None)


def keep_on_volume(pod_env, line: str) -> None:  # noqa: F811
    kept = pod_env.workspace / ".runner" / "ssh-host-keys"
    kept.mkdir(parents=True, exist_ok=True)
    (kept / "ssh_host_ed25519_key.pub").write_text(line + " root@pod\n")


def test_the_first_connection_is_verified_against_the_key_the_pod_keeps_on_the_volume(pod_env, volume_s3, capfd):  # noqa: F811
    pod_env.add_pod("RUNNING")
    volume_s3()
    keep_on_volume(pod_env, pod_env.sshd.known_host_key)
    assert cli.main(["ssh-config"]) == 0
    key = HostKey.from_line(pod_env.sshd.known_host_key)
    err = capfd.readouterr().err
    assert f"its SSH host key ssh-ed25519 {key.fingerprint} is the one it keeps on the volume" in err, err
    assert pins(pod_env)[pod_env.pod_id]["key"] == key.base64


def test_a_first_connection_that_meets_another_key_than_the_kept_one_is_refused(pod_env, volume_s3, capfd, tmp_path):  # noqa: F811
    pod_env.add_pod("RUNNING")
    volume_s3()
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    keep_on_volume(pod_env, " ".join(other.with_suffix(".pub").read_text().split()[:2]))
    assert cli.main(["ssh-config"]) == ExitCode.SSH
    err = capfd.readouterr().err
    kept = HostKey.from_line(other.with_suffix(".pub").read_text())
    assert "the first SSH connection to" in err and kept.fingerprint in err and "man-in-the-middle" in err, err
    known_hosts = pod_env.state_dir / "dev" / "known_hosts"
    assert not known_hosts.exists() or pod_env.pod_id not in pins(pod_env)  # nothing pinned


@pytest.mark.parametrize("kept", ["not a key", "ssh-ed25519 !!!not-base64!!!", "ssh-dss AAAAB3NzaC1kc3M="])
def test_a_kept_key_that_is_not_one_vouches_for_nothing(pod_env, volume_s3, capfd, kept):  # noqa: F811
    pod_env.add_pod("RUNNING")
    volume_s3()
    keep_on_volume(pod_env, kept)
    assert cli.main(["ssh-config"]) == 0
    assert "pinned its SSH host key" in capfd.readouterr().err  # trust on first use, as without S3
