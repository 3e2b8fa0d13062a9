"""Wait until an SSH server greets on host:port (a --host machine; the pod's own wait is runner/pod/lifecycle.py)."""

from __future__ import annotations

from backends.polling import Backoff
from backends.ssh_probe import probe_ssh
from runner.errors import SshNotReady
from runner.types import Say


def wait_for_ssh_banner(
    host: str,
    port: int,
    *,
    deadline_s: float,
    on_wait: Say | None = None,
    probe_timeout_s: float = 5.0,
) -> None:
    """Wait up to deadline_s seconds for the "SSH-2.0-..." banner; SshNotReady after that.

    on_wait gets a one-line description of what we are still waiting for before each pause."""
    backoff = Backoff(deadline_s, first_s=0.5, factor=1.6, cap_s=5.0)
    while True:
        probe = probe_ssh(host, port, min(probe_timeout_s, max(0.5, deadline_s)))
        if probe.ok:
            return
        if backoff.remaining <= 0:
            raise SshNotReady(
                f"no SSH server answered on {host}:{port} within {deadline_s:g}s (last: {probe.detail}). Check "
                f"--host (USER@HOST[:PORT], the port defaults to 22): that {host} is up and reachable from this "
                f"machine, that sshd listens on port {port} there, and that no firewall drops the connection "
                f"(`ssh -p {port} {host}` shows the same)."
            )
        if on_wait is not None:
            on_wait(f"waiting for SSH on {host}:{port}: {probe.detail} ({backoff.elapsed:.0f}s of {deadline_s:g}s)")
        backoff.wait()
