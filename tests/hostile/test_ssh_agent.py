"""Finding 8: a key protected by a passphrase is used through ssh-agent (never stripped of its
passphrase), and what `runner ssh` and `runner ssh-config` produce never forwards the agent to the pod."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from runner import cli
from runner.errors import SshKeyError
from runner.remote.hostkeys import expect_host_key
from runner.remote.ssh import SshConnection, SshTarget
from standins.waiting import wait_for
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def encrypted_key(tmp_path, sshd) -> Path:
    key = tmp_path / "id_encrypted"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", str(key)], check=True)
    sshd.authorize(key.with_name(key.name + ".pub").read_text())
    return key


@pytest.fixture
def agent(tmp_path, monkeypatch):
    """A real ssh-agent of this test (its own socket); add(key) loads a key with its passphrase."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    wait_for(sock.exists, 10, "ssh-agent's socket")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n")
    askpass.chmod(0o700)

    def add(key: Path) -> None:
        env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
        subprocess.run(["ssh-add", str(key)], env=env, check=True, stdin=subprocess.DEVNULL, capture_output=True)

    yield add
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def test_an_encrypted_key_signs_through_ssh_agent(sshd, encrypted_key, agent):
    agent(encrypted_key)
    target = SshTarget(sshd.host, sshd.port, sshd.user, str(encrypted_key))
    with SshConnection.open(target, host_key_check=expect_host_key(sshd.known_host_key), timeout=10) as conn:
        assert conn.run("echo through-the-agent").stdout == "through-the-agent\n"


def test_the_public_half_is_read_without_the_passphrase(encrypted_key):
    from runner.remote.keys import public_blob

    pub = encrypted_key.with_name(encrypted_key.name + ".pub")
    from_pub = public_blob(encrypted_key)
    pub.rename(pub.with_name("moved.pub"))  # the OpenSSH format's own header then
    assert from_pub is not None and public_blob(encrypted_key) == from_pub


def test_without_the_agent_the_advice_is_ssh_add_or_a_dedicated_key(sshd, encrypted_key, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    target = SshTarget(sshd.host, sshd.port, sshd.user, str(encrypted_key))
    with pytest.raises(SshKeyError) as info:
        SshConnection.open(target, host_key_check=expect_host_key(sshd.known_host_key), timeout=10)
    assert f"ssh-add {encrypted_key}" in info.value.message and "runpod_ed25519" in info.value.message
    assert "ssh-keygen -p" not in info.value.message  # never: strip the passphrase of your main key


def test_ssh_and_ssh_config_never_forward_the_agent(pod_env, capfd, monkeypatch):  # noqa: F811
    import runner.companions.ssh as ssh_companion

    pod_env.add_pod("RUNNING")
    assert cli.main(["ssh-config"]) == 0
    assert "    ForwardAgent no\n" in capfd.readouterr().out
    seen: list[list[str]] = []
    monkeypatch.setattr(ssh_companion, "_exec", lambda exe, argv: seen.append(argv))
    assert cli.main(["ssh"]) == 0
    argv = seen[0]
    assert "ForwardAgent=no" in [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
