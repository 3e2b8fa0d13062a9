"""Small shared vocabulary: the "say a line" callback, and the kinds the runner talks about."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

# How a step tells the user what it is doing: one line, no newline (stderr, secrets scrubbed).
Say = Callable[[str], None]


def say_nothing(_message: str) -> None:
    """A Say for callers that want no progress lines."""


class StrEnum(str, Enum):
    """An Enum whose members are their string values (JSON, f-strings and == "value" all work)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Market(StrEnum):
    SPOT = "spot"
    ON_DEMAND = "on-demand"


class TargetKind(StrEnum):
    """Where `runner train` trains."""

    POD = "pod"  # the stack's RunPod pod
    HOST = "host"  # any SSH machine (--host)
    LOCAL = "local"  # this machine (--local)


__all__ = ["Market", "Say", "StrEnum", "TargetKind", "say_nothing"]
