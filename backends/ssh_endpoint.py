"""What an SSH endpoint may hold before it goes anywhere: an ssh_config block users `Include`, ssh's and
rsync's command lines, a connection. The endpoint comes from the cloud's API (and is kept in the stack
outputs and the runner's pins); a newline in it would inject `Host *` / `ProxyCommand` lines into the
block, a leading '-' would turn a user name into an option of ssh (`-oProxyCommand=...`)."""

from __future__ import annotations

import ipaddress
import re

_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\Z")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")


def endpoint_problem(host: object, port: object, user: object) -> str | None:
    """Why (host, port, user) is not a plain SSH endpoint, or None when it is: an IP address or a DNS
    name, a port 1-65535, a user name of letters, digits, '_', '.' and '-' not starting with '-'."""
    if not isinstance(host, str) or not host:
        return f"host {host!r} is not a host name"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            return f"host {host!r} is neither an IP address nor a host name"
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return f"port {port!r} is not a TCP port"
    if not isinstance(user, str) or not _USER.match(user):
        return f"user {user!r} is not a plain user name"
    return None


__all__ = ["endpoint_problem"]
