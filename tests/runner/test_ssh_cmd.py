"""`runner ssh` / `runner ssh-config`: argv and Host block for the system ssh, checked by really
connecting with OpenSSH to the test sshd using what they produce."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from runner import cli
from runner.companions import ssh as ssh_cmd
from runner.exitcodes import ExitCode
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)


@pytest.fixture
def exec_calls(monkeypatch):
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(ssh_cmd, "_exec", lambda file, argv: calls.append((file, list(argv))))
    return calls


def _opt(argv: list[str], name: str) -> str:
    values = [
        argv[i + 1].split("=", 1)[1]
        for i, a in enumerate(argv[:-1])
        if a == "-o" and argv[i + 1].startswith(name + "=")
    ]
    assert len(values) == 1, (name, argv)
    return values[0]


def test_ssh_builds_the_argv_and_it_really_connects(pod_env, exec_calls):
    pod_env.add_pod("RUNNING")
    assert cli.main(["ssh"]) == 0
    [(file, argv)] = exec_calls
    settings = pod_env.settings()
    port = pod_env.pod.ssh_port
    assert file == "ssh" and argv[0] == "ssh"
    assert argv[argv.index("-i") + 1] == str(settings.ssh_key_path)
    assert argv[argv.index("-p") + 1] == str(port)
    assert argv[-2:] == ["-t", f"root@{pod_env.sshd.host}"]
    assert _opt(argv, "StrictHostKeyChecking") == "yes"
    assert _opt(argv, "BatchMode") == "yes" and _opt(argv, "IdentitiesOnly") == "yes"
    assert _opt(argv, "HostKeyAlias") == "runpod-dev"
    known_hosts = _opt(argv, "UserKnownHostsFile")
    assert known_hosts == str(settings.paths.stack_dir / "ssh_known_hosts")
    key_type, key = pod_env.sshd.known_host_key.split()[:2]
    with open(known_hosts) as fh:
        assert fh.read() == f"runpod-dev {key_type} {key}\n"
    # The same argv with a command, run for real: OpenSSH accepts the pinned key and our identity.
    res = subprocess.run(
        argv[:-2] + [argv[-1], "echo", "hello from the pod"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "hello from the pod"


def test_ssh_passes_a_remote_command(pod_env, exec_calls):
    pod_env.add_pod("RUNNING")
    args = argparse.Namespace(command="ssh", remote_command=["--", "nvidia-smi", "-L"])
    assert ssh_cmd.run(args, pod_env.settings()) == 0
    [(_, argv)] = exec_calls
    assert argv[-4:] == ["-t", f"root@{pod_env.sshd.host}", "nvidia-smi", "-L"]


def test_ssh_refuses_a_stopped_pod_without_starting_it(pod_env, exec_calls, capsys):
    pod_env.add_pod("EXITED")
    assert cli.main(["ssh"]) == ExitCode.POD
    assert "does not start one" in capsys.readouterr().err
    assert exec_calls == [] and pod_env.fake.billable_calls() == []


def test_ssh_config_block_works_with_openssh(pod_env, tmp_path, capsys):
    pod_env.add_pod("RUNNING")
    assert cli.main(["ssh-config"]) == 0
    captured = capsys.readouterr()
    block = captured.out
    settings = pod_env.settings()
    assert "Host runpod-dev\n" in block
    assert f"    HostName {pod_env.sshd.host}\n" in block
    assert f"    Port {pod_env.pod.ssh_port}\n" in block
    assert "    User root\n" in block
    assert f"    IdentityFile {settings.ssh_key_path}\n" in block
    assert "    IdentitiesOnly yes\n" in block
    assert f"    UserKnownHostsFile {settings.paths.stack_dir / 'ssh_known_hosts'}\n" in block
    assert "    StrictHostKeyChecking yes\n" in block
    assert "port changes on every pod start" in captured.err
    config = tmp_path / "ssh_config"
    config.write_text(block)
    res = subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "runpod-dev", "echo", "ok"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_ssh_config_write_follows_a_pod_restart(pod_env, tmp_path, capsys):
    """--write keeps an Include-able file current; after a restart (new port, new host key) rerunning it
    is all that is needed."""
    pod_env.add_pod("RUNNING")
    settings = pod_env.settings()
    args = argparse.Namespace(command="ssh-config", write=True)
    assert ssh_cmd.run(args, settings) == 0
    out = capsys.readouterr().out
    target = settings.paths.ssh_config
    assert f"Include {target}" in out
    assert (target.stat().st_mode & 0o777) == 0o600
    main_config = tmp_path / "main_config"
    main_config.write_text(f"Include {target}\n")

    def ssh_ok() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-F", str(main_config), "-o", "BatchMode=yes", "runpod-dev", "true"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )

    assert ssh_ok().returncode == 0
    first_port = pod_env.pod.ssh_port

    client = pod_env.fake.client()
    client.stop_pod(pod_env.pod_id)
    pod_env.sshd.rotate_host_key()
    client.resume_spot_pod(pod_env.pod_id, 0.3, 1)
    pod_env.fake.wait_for(lambda: pod_env.pod.status == "RUNNING", timeout=10)
    assert pod_env.pod.ssh_port != first_port
    stale = ssh_ok()
    assert stale.returncode != 0  # the old block names the old host key: it must be regenerated

    assert ssh_cmd.run(args, settings) == 0
    res = ssh_ok()
    assert res.returncode == 0, res.stderr
    assert f"Port {pod_env.pod.ssh_port}" in target.read_text()
