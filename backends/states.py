"""What a cloud says about a pod, in neutral terms: the facts a backend's dialect reports and the runner
decides on (runner/pod/pod.py adds what only the runner knows: who stopped it, the stack's market).

A backend maps its own words to these (backends/runpod/dialect.py); nothing outside a backend names a
cloud's status strings."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Phase(str, Enum):
    RUNNING = "running"  # running, with a public SSH endpoint
    STARTING = "starting"  # on its way (or running without an SSH endpoint yet)
    STOPPED = "stopped"  # stopped, and can be started again
    GONE = "gone"  # terminated, or unknown to the cloud


class StopReason(str, Enum):
    """Why a stopped pod stopped, when the cloud says."""

    OUTBID = "outbid"  # a spot pod lost its machine to a higher bid
    BY_OWNER = "by_owner"  # the account's owner (console, API) or the pod itself
    BY_PLATFORM = "by_platform"  # the cloud (error, balance, maintenance)
    UNKNOWN = "unknown"  # the cloud keeps no history (or did not answer it): the runner's evidence decides


@dataclass(frozen=True)
class PodFacts:
    phase: Phase
    reason: StopReason | None = None  # for a stopped pod
    detail: str | None = None  # the cloud's own words, for messages (e.g. "Outbid: Mon Dec 07 2026 ...")


__all__ = ["Phase", "PodFacts", "StopReason"]
