"""The one rule for the URLs that carry a key (RunPod's APIs, the S3 endpoint): https, except on this
machine. http:// sends the API key (or the signed S3 requests) in the clear to anyone on the path; a
local proxy or the tests' stand-ins on 127.0.0.1 / localhost / ::1 may use it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def plain_http_elsewhere(url: str) -> bool:
    """True when url is http:// to a host that is not this machine (the key would cross a network)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


__all__ = ["plain_http_elsewhere"]
