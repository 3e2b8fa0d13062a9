"""Does an SSH server answer on host:port? (RunPod publishes port 22 before sshd is up.)"""
from __future__ import annotations

import socket


def read_ssh_banner(host: str, port: int, *, timeout: float = 5.0) -> str | None:
    """The server's identification line ("SSH-2.0-...") or None if nothing SSH-like answers."""
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = b""
            # RFC 4253 allows other lines before the identification line; read a few of them.
            while len(data) < 4096:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
                for line in data.split(b"\n")[:-1]:
                    if line.startswith(b"SSH-"):
                        return line.rstrip(b"\r").decode("ascii", "replace")
    except OSError:
        return None
    return None
