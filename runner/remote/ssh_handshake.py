"""Making one SSH connection for SshConnection.open (runner/remote/ssh.py): TCP with Nagle off, the
handshake, the server's host key handed to the HostKeyPolicy, then the key's authentication. A pin
becomes final only once the server accepted the key; any failure closes the transport.
"""

from __future__ import annotations

import socket
from typing import Protocol

import paramiko

from runner.errors import SshAuthError, SshConnectError
from runner.remote.hostkeys import HostKey, HostKeyPolicy


class Endpoint(Protocol):
    """Where to connect and as whom (runner.remote.ssh.SshTarget); str() names it in errors."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def key_path(self) -> str: ...


def handshake(
    target: Endpoint,
    pkey: paramiko.PKey,
    host_key_check: HostKeyPolicy,
    timeout: float,
    keepalive: int,
    unreachable_hint: str,
) -> tuple[paramiko.Transport, HostKey]:
    """An authenticated transport to target and the host key it showed; SshConnectError, SshAuthError,
    or what the policy raises (HostKeyMismatch)."""
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except OSError as e:
        raise SshConnectError(f"cannot connect to {target}: {e.strerror or e}. {unreachable_hint}") from None
    # paramiko leaves Nagle on: its small writes (the key exchange, auth, each channel open) then wait for
    # the server's delayed ACK, ~40 ms each time. OpenSSH's ssh and sshd turn it off too.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    transport.auth_timeout = timeout
    try:
        try:
            transport.start_client(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise SshConnectError(
                f"SSH handshake with {target} failed ({e}); the port answers but sshd may still be "
                f"starting: wait for the SSH banner and retry"
            ) from None
        server_key = transport.get_remote_server_key()
        host_key = HostKey(server_key.get_name(), server_key.get_base64())
        confirm = host_key_check(host_key)
        try:
            transport.auth_publickey(target.user, pkey)
        except paramiko.AuthenticationException as e:
            if not transport.is_active() or "transport shut down" in str(e):
                # paramiko's "transport shut down or saw EOF": the link dropped during auth (a
                # preemption, sshd restarting), which a reconnect may cure; the key was not refused.
                raise SshConnectError(f"connection to {target} dropped during authentication ({e})") from None
            raise SshAuthError(
                f"{target} rejected the key {target.key_path} ({e}). Register its public half "
                f"({target.key_path}.pub) in RunPod's SSH key settings and make sure the pod was "
                f"created with SSH enabled (the image installs PUBLIC_KEY into authorized_keys)."
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise SshConnectError(f"connection to {target} dropped during authentication ({e})") from None
        if confirm is not None:
            confirm()  # the host key's pin becomes final only now that the server accepted us
        if keepalive:
            transport.set_keepalive(keepalive)
    except BaseException:
        transport.close()
        raise
    return transport, host_key


__all__ = ["handshake"]
