"""A loopback port with nothing listening on it (bound once to pick it, then released): for tests of
"nobody answers here" and for servers the tests start themselves."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


__all__ = ["free_port"]
