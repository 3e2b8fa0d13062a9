"""Argument types the command modules share (argparse `type=` callables with clear messages)."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class HostSpec:
    """--host user@host[:port]: train on a machine you already have instead of the stack's pod."""

    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


_HOST_RE = re.compile(
    r"^(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d+))?$"
)


def host_spec(value: str) -> HostSpec:
    m = _HOST_RE.match(value)
    if not m:
        raise argparse.ArgumentTypeError(f"expected user@host or user@host:port, got {value!r}")
    port = int(m["port"]) if m["port"] else 22
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range 1-65535")
    return HostSpec(m["user"], m["host"].strip("[]"), port)


def non_negative_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


def positive_int(value: str) -> int:
    n = non_negative_int(value)
    if n == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def port(value: str) -> int:
    n = positive_int(value)
    if n > 65535:
        raise argparse.ArgumentTypeError(f"port {n} is out of range 1-65535")
    return n


def budget(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an amount in US dollars, got {value!r}") from None
    if not x > 0 or x != x or x == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive amount of dollars, got {value!r}")
    return x


def positive_seconds(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {value!r}")
    return x


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def duration(value: str) -> float:
    """A duration: 90, 90s, 30m, 6h or 2d -> seconds."""
    m = _DURATION.match(value)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration like 30m, 6h or 2d, got {value!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def run_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise argparse.ArgumentTypeError(
            "run ids are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def pod_name(value: str) -> str:
    """A pod's name in its stack (podNames, or pod1, pod2... with podCount), or its RunPod id."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", value):
        raise argparse.ArgumentTypeError(f"expected a pod's name in the stack (like pod2) or its id, got {value!r}")
    return value


def add_pod_arguments(p: argparse.ArgumentParser, *, run: bool = True, what: str = "") -> None:
    """--pod NAME (and --run ID) of a command on a stack with several pods (runner/pod/choice.py)."""
    p.add_argument(
        "--pod",
        type=pod_name,
        metavar="NAME",
        help="the stack's pod to use, when it has several (podCount); "
        + (what or "default: the one with a live run; with several, you are asked"),
    )
    if run:
        p.add_argument("--run", type=run_id, metavar="ID", help="the pod this run was started on (several pods)")


def config_setting(value: str) -> tuple[str, object]:
    """KEY=VALUE for a top-level config key; the value is read as JSON when it is (1e-4, 16, true,
    null), else kept as text."""
    import json

    key, eq, raw = value.partition("=")
    key = key.strip()
    if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", key):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a top-level config key, got {value!r}")
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    if isinstance(parsed, (list, dict)):
        parsed = raw
    return key, parsed
