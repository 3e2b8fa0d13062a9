"""Finding 13: endpoint fields from the API (and the stack outputs) went unchecked into the ssh_config
block users `Include` (a newline injects `Host *` / `ProxyCommand`) and onto ssh's command line (a user
`-oProxyCommand=...`). Now an endpoint is an IP address or a host name, a port and a plain user name, or
nothing goes anywhere (backends/ssh_endpoint.py)."""

from __future__ import annotations

import pytest

from backends.ssh_endpoint import endpoint_problem
from runner import cli
from runner.exitcodes import ExitCode
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)


@pytest.mark.parametrize(
    ("host", "port", "user"),
    [
        ("127.0.0.1\nHost *\n  ProxyCommand touch /tmp/x", 22, "root"),
        ("-oProxyCommand=x", 22, "root"),
        ("a b", 22, "root"),
        ("1.2.3.4", 0, "root"),
        ("1.2.3.4", 70000, "root"),
        ("1.2.3.4", 22, "-oProxyCommand=touch /tmp/x"),
        ("1.2.3.4", 22, "root\nHost *"),
        ("1.2.3.4", 22, "a@b"),
    ],
)
def test_what_is_not_a_plain_endpoint(host, port, user):
    assert endpoint_problem(host, port, user) is not None


@pytest.mark.parametrize(("host", "user"), [("203.0.113.7", "root"), ("::1", "root"), ("pod-1.example.net", "ubuntu")])
def test_plain_endpoints(host, user):
    assert endpoint_problem(host, 40022, user) is None


def test_a_hostile_host_from_the_api_never_reaches_the_ssh_config_block(pod_env, capfd):  # noqa: F811
    pod_env.add_pod("RUNNING")
    pod_env.pod.ssh_host = f"{pod_env.sshd.host}\nHost *\n    ProxyCommand touch {pod_env.project}/pwned"
    assert cli.main(["ssh-config", "--write"]) == ExitCode.API
    cap = capfd.readouterr()
    assert "SSH endpoint the runner will not use" in cap.err
    assert not (pod_env.state_dir / "dev" / "ssh_config").exists()
    assert "ProxyCommand" not in cap.out


def test_a_hostile_user_in_the_stack_outputs_never_reaches_ssh(pod_env, capfd, monkeypatch):  # noqa: F811
    import runner.companions.ssh as ssh_companion

    pod_env.add_pod("RUNNING")
    outputs = pod_env.stub.behaviour()["outputs"]
    pod_env.stub.set(outputs={**outputs, "ssh_user": f"-oProxyCommand=touch {pod_env.project}/pwned"})
    ran: list[list[str]] = []
    monkeypatch.setattr(ssh_companion, "_exec", lambda exe, argv: ran.append(argv))
    assert cli.main(["ssh"]) == ExitCode.STACK
    assert "ssh_user is not a plain user name" in capfd.readouterr().err and ran == []
