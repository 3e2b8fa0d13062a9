"""The only code that speaks RunPod's HTTP APIs.

INTERFACE STUB: the public names below are the contract used by infra/ and runner/.
The implementation is being written; see the docstrings for the API each method uses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Mapping

DEFAULT_REST_URL = "https://api.runpod.io"          # REST v2 paths are /v2/...
DEFAULT_GRAPHQL_URL = "https://api.runpod.io/graphql"
REST_URL_ENV = "RUNPOD_REST_URL"
GRAPHQL_URL_ENV = "RUNPOD_GRAPHQL_URL"
API_KEY_ENV = "RUNPOD_API_KEY"

# REST v2 observed pod states
PROVISIONING = "PROVISIONING"
STARTING = "STARTING"
RUNNING = "RUNNING"
EXITED = "EXITED"
ERROR = "ERROR"
TERMINATED = "TERMINATED"


# ---------------------------------------------------------------- errors
class RunPodError(Exception):
    """Any failure talking to RunPod. `message` is the server's text (never the key)."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id


class AuthError(RunPodError):
    """Missing, wrong or insufficient API key (HTTP 401/403)."""


class NotFound(RunPodError):
    """The pod or volume does not exist (404, 'pod not found', nonexistent volume)."""


class NoCapacity(RunPodError):
    """'There are no longer any instances available…' and its variants, or not enough free GPUs on the host."""


class SpotUnavailable(RunPodError):
    """The spot GraphQL operations are gone or rejected (field undefined, mutation removed)."""


class RateLimited(RunPodError):
    """HTTP 429 still returned after the client's retries; `retry_after` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class InvalidAction(RunPodError):
    """The action is not valid for the pod's current status (REST 409, 'Cannot resume a spot pod…')."""


class VolumeInUse(RunPodError):
    """A network volume cannot be deleted while a pod uses it."""


class TransientError(RunPodError):
    """5xx, connection reset or timeout, still failing after bounded retries with backoff."""


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class SshEndpoint:
    host: str
    port: int
    user: str = "root"


@dataclass(frozen=True)
class Pod:
    id: str
    name: str
    status: str                      # REST v2 observed status (PROVISIONING … TERMINATED)
    desired_status: str | None       # GraphQL desiredStatus, when fetched
    interruptible: bool | None       # True = spot, False = on-demand, None = unknown
    gpu_type: str | None
    gpu_count: int
    cost_per_hr: float
    data_center: str | None
    volume_id: str | None
    ssh: SshEndpoint | None          # direct SSH endpoint; None unless RUNNING with 22/tcp public
    last_status_change: str | None   # GraphQL free text, e.g. "Outbid: <date>"
    started_at: str | None           # ISO-8601, changes on every start
    image: str | None = None

    @property
    def is_running(self) -> bool:
        return self.status == RUNNING

    @property
    def was_outbid(self) -> bool:
        return (self.last_status_change or "").lower().startswith("outbid")


@dataclass(frozen=True)
class NetworkVolume:
    id: str
    name: str
    size_gb: int
    data_center: str
    type: str = "STANDARD"


@dataclass(frozen=True)
class SpotPrice:
    minimum_bid_per_gpu: float | None
    on_demand_price_per_gpu: float | None
    stock_status: str | None


@dataclass(frozen=True)
class PodSpec:
    """Everything needed to create a pod; shared by the spot and on-demand paths."""

    name: str
    image: str
    gpu_type: str
    gpu_count: int
    data_center: str
    volume_id: str | None
    container_disk_gb: int
    volume_mount_path: str = "/workspace"
    ports: tuple[str, ...] = ("22/tcp",)
    env: Mapping[str, str] = field(default_factory=dict)
    cloud_type: str = "SECURE"


class RunPodClient:
    """Holds only plain values (key, URLs, retry policy): safe to create anywhere, nothing to pickle.

    Every call opens its own HTTP connection.
    """

    def __init__(
        self,
        api_key: str,
        *,
        rest_url: str | None = None,
        graphql_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        raise NotImplementedError

    @classmethod
    def from_env(cls, api_key: str | None = None, **kw) -> "RunPodClient":
        """Key from the argument or RUNPOD_API_KEY; URLs from RUNPOD_REST_URL / RUNPOD_GRAPHQL_URL."""
        raise NotImplementedError

    # pods ------------------------------------------------------------
    def get_pod(self, pod_id: str, *, with_history: bool = False) -> Pod:
        """REST v2 GET /v2/pods/{id}; with_history adds GraphQL lastStatusChange/podType. Raises NotFound."""
        raise NotImplementedError

    def find_pod(self, pod_id: str, *, with_history: bool = False) -> Pod | None:
        """Like get_pod, None when the pod is gone."""
        raise NotImplementedError

    def create_spot_pod(self, spec: PodSpec, bid_per_gpu: float) -> Pod:
        """GraphQL podRentInterruptable. NoCapacity / SpotUnavailable on failure."""
        raise NotImplementedError

    def create_on_demand_pod(self, spec: PodSpec) -> Pod:
        """REST v2 POST /v2/pods."""
        raise NotImplementedError

    def resume_spot_pod(self, pod_id: str, bid_per_gpu: float, gpu_count: int) -> None:
        """GraphQL podBidResume."""
        raise NotImplementedError

    def start_pod(self, pod_id: str) -> Pod:
        """REST v2 POST /v2/pods/{id}/action {"action": "start"} (on-demand pods)."""
        raise NotImplementedError

    def stop_pod(self, pod_id: str) -> Pod:
        """REST v2 POST /v2/pods/{id}/action {"action": "stop"}."""
        raise NotImplementedError

    def terminate_pod(self, pod_id: str) -> None:
        """REST v2 DELETE /v2/pods/{id}. Raises NotFound when already gone."""
        raise NotImplementedError

    def spot_price(self, gpu_type: str, gpu_count: int, data_center: str | None) -> SpotPrice:
        """GraphQL gpuTypes { lowestPrice { minimumBidPrice … } }."""
        raise NotImplementedError

    # network volumes --------------------------------------------------
    def create_network_volume(self, name: str, size_gb: int, data_center: str) -> NetworkVolume:
        raise NotImplementedError

    def get_network_volume(self, volume_id: str) -> NetworkVolume:
        raise NotImplementedError

    def update_network_volume(self, volume_id: str, *, name: str | None = None, size_gb: int | None = None) -> NetworkVolume:
        raise NotImplementedError

    def delete_network_volume(self, volume_id: str) -> None:
        """Raises VolumeInUse while a pod uses it, NotFound when already gone."""
        raise NotImplementedError


__all__ = [n for n in dir() if not n.startswith("_") and n not in {"annotations", "os"}]
