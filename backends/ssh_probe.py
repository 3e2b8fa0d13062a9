"""Does an SSH server answer on host:port? The one banner probe of the providers and the runner.

A published port is not enough: RunPod maps 22/tcp before sshd runs (or when the image starts
none), so a server counts as up only once it sends its identification line ("SSH-2.0-...").
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class BannerProbe:
    ok: bool
    detail: str  # the banner when ok, else what happened (for "still waiting" messages)


def probe_ssh(host: str, port: int, timeout: float = 5.0) -> BannerProbe:
    """One attempt, bounded by timeout seconds in all."""
    deadline = time.monotonic() + max(timeout, 0.1)
    try:
        with socket.create_connection((host, int(port)), timeout=max(timeout, 0.1)) as sock:
            data = b""
            # RFC 4253 4.2: the server may send other lines before the identification line.
            while len(data) < 8192:
                left = deadline - time.monotonic()
                if left <= 0:
                    return BannerProbe(
                        False, "the port accepts connections but sends no SSH banner (sshd not started yet?)"
                    )
                sock.settimeout(left)
                try:
                    chunk = sock.recv(1024)
                except TimeoutError:
                    return BannerProbe(
                        False, "the port accepts connections but sends no SSH banner (sshd not started yet?)"
                    )
                if not chunk:
                    return BannerProbe(False, "the port accepts connections but closes them without an SSH banner")
                data += chunk
                for line in data.split(b"\n")[:-1]:
                    if line.startswith(b"SSH-"):
                        return BannerProbe(True, line.rstrip(b"\r").decode("ascii", "replace"))
            return BannerProbe(False, "something that is not an SSH server answers on the port")
    except TimeoutError:
        return BannerProbe(False, "connection attempt timed out")
    except OSError as e:
        return BannerProbe(False, (e.strerror or str(e)).lower())


def read_ssh_banner(host: str, port: int, *, timeout: float = 5.0) -> str | None:
    """The server's identification line ("SSH-2.0-...") or None if nothing SSH-like answers."""
    probe = probe_ssh(host, port, timeout)
    return probe.detail if probe.ok else None


__all__ = ["BannerProbe", "probe_ssh", "read_ssh_banner"]
