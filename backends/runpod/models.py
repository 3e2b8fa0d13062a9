"""What the RunPod client returns and takes: pod states, typed results (Pod, NetworkVolume,
SpotPrice), the PodSpec to create a pod from, their validation, and parsing REST v2 objects into them.

No HTTP here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backends.runpod.errors import RunPodError
from backends.ssh_endpoint import endpoint_problem

# REST v2 observed pod states
PROVISIONING = "PROVISIONING"
STARTING = "STARTING"
RUNNING = "RUNNING"
EXITED = "EXITED"
ERROR = "ERROR"
TERMINATED = "TERMINATED"

BOOTING_STATES = frozenset({PROVISIONING, STARTING, RUNNING})


@dataclass(frozen=True)
class SshEndpoint:
    host: str
    port: int
    user: str = "root"


@dataclass(frozen=True)
class GpuUse:
    """One GPU of a running pod as REST v2 reports it (`runtime.gpus[]`): utilization and memory in use,
    percent; None where the answer left the figure out."""

    util: int | None
    memory_util: int | None


@dataclass(frozen=True)
class PodBilling:
    """What RunPod billed for pods (GET /v2/billing/pods), summed over the buckets asked for."""

    total_usd: float
    start: str | None  # the resolved window, RFC 3339 (buckets are whole: it starts at a bucket's start)
    end: str | None
    records: int


@dataclass(frozen=True)
class Pod:
    id: str
    name: str
    status: str  # REST v2 observed status (PROVISIONING … TERMINATED)
    desired_status: str | None  # GraphQL desiredStatus, when fetched
    interruptible: bool | None  # True = spot, False = on-demand, None = unknown
    gpu_type: str | None
    gpu_count: int
    cost_per_hr: float
    data_center: str | None
    volume_id: str | None
    ssh: SshEndpoint | None  # direct SSH endpoint; None unless RUNNING with 22/tcp public
    last_status_change: str | None  # GraphQL free text, e.g. "Outbid: <date>"
    started_at: str | None  # ISO-8601, changes on every start
    image: str | None = None
    pod_type: str | None = None  # GraphQL podType (INTERRUPTABLE, RESERVED, …), when fetched
    created_at: str | None = None
    gpu_use: tuple[GpuUse, ...] | None = None  # RUNNING only; None: the API reported no utilization

    @property
    def is_running(self) -> bool:
        return self.status == RUNNING

    @property
    def is_stopped(self) -> bool:
        """Stopped and startable again (EXITED, or ERROR)."""
        return self.status in (EXITED, ERROR)

    @property
    def is_gone(self) -> bool:
        return self.status == TERMINATED

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
class CatalogPrice:
    """The REST v2 GPU catalog's list price for one GPU type in one cloud, and its stock in one data center.

    RunPod quotes `price.secure` / `price.community` per single GPU; a pod of `gpu_count` GPUs lists at
    `per_hour`. What a running pod is actually billed is its own `cost` (Pod.cost_per_hr)."""

    gpu_type: str
    cloud: str  # SECURE | COMMUNITY: which of the catalog's prices this is
    per_gpu: float  # USD per GPU-hour
    gpu_count: int
    stock: str  # v2 AvailabilityLevel in the data center asked about: NONE, LOW, MEDIUM or HIGH

    @property
    def per_hour(self) -> float:
        return self.per_gpu * self.gpu_count

    @property
    def price_field(self) -> str:
        return price_field(self.cloud)


def price_field(cloud: str) -> str:
    """The catalog field that holds the list price for `cloud` (SECURE or COMMUNITY)."""
    return f"price.{cloud.lower()}"


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
    start_command: str = ""  # the container's command (REST v2 args, GraphQL dockerArgs); "": the image's


def _require_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a {what} is required")


def _validate_size(size_gb: Any) -> None:
    if not isinstance(size_gb, int) or isinstance(size_gb, bool) or not 10 <= size_gb <= 4096:
        raise ValueError(f"network volume size must be an integer between 10 and 4096 GB, got {size_gb!r}")


_DC_RE = re.compile(r"^[A-Z]{2,4}-[A-Z]{2,4}-\d+$")  # Secure Cloud ids: EU-RO-1, US-KS-2, EUR-IS-1, CA-MTL-1


def _validate_spec(spec: PodSpec) -> None:
    if not spec.name:
        raise ValueError("a pod needs a name")
    if not spec.image:
        raise ValueError("a pod needs a container image")
    if not spec.gpu_type:
        raise ValueError("a pod needs a GPU type (e.g. 'NVIDIA GeForce RTX 4090')")
    if not isinstance(spec.gpu_count, int) or spec.gpu_count < 1:
        raise ValueError(f"gpu_count must be a positive integer, got {spec.gpu_count!r}")
    if not isinstance(spec.container_disk_gb, int) or spec.container_disk_gb < 1:
        raise ValueError(f"container_disk_gb must be a positive integer, got {spec.container_disk_gb!r}")
    if spec.volume_id and spec.cloud_type != "SECURE":
        raise ValueError("network volumes only work in RunPod's Secure Cloud: set cloud_type to SECURE")
    if spec.volume_id and not spec.data_center:
        raise ValueError("a pod with a network volume must be placed in the volume's data center")
    if spec.data_center and not _DC_RE.match(spec.data_center):
        raise ValueError(f"data center {spec.data_center!r} is not a Secure Cloud id like 'EU-RO-1' (upper case)")


def _float_or_none(v: Any) -> float | None:
    return None if v is None else float(v)


def _checked(endpoint: SshEndpoint) -> SshEndpoint:
    """Only a plain endpoint leaves the API's answer (backends/ssh_endpoint.py)."""
    problem = endpoint_problem(endpoint.host, endpoint.port, endpoint.user)
    if problem is not None:
        raise RunPodError(f"the API reported an SSH endpoint the runner will not use: {problem}")
    return endpoint


def _interruptible_from_pod_type(pod_type: str | None) -> bool | None:
    # Which podType a spot pod reports is UNCONFIRMED; INTERRUPTABLE is presumed, BID accepted too.
    if pod_type in ("INTERRUPTABLE", "BID"):
        return True
    if pod_type == "RESERVED":
        return False
    return None


def _ssh_from_v2(data: Mapping[str, Any]) -> SshEndpoint | None:
    direct = ((data.get("ssh") or {}).get("direct")) or None
    if isinstance(direct, dict) and direct.get("host") and direct.get("port"):
        return _checked(SshEndpoint(str(direct["host"]), int(direct["port"]), str(direct.get("username") or "root")))
    runtime = data.get("runtime") or {}
    for p in runtime.get("ports") or []:
        if p.get("private") == 22 and p.get("type") == "tcp" and p.get("ip") and p.get("public"):
            return _checked(SshEndpoint(str(p["ip"]), int(p["public"]), "root"))
    return None


def _percent(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _gpu_use_from_v2(data: Mapping[str, Any]) -> tuple[GpuUse, ...] | None:
    """runtime.gpus[] of a running pod; None when runtime or its gpus are absent (never read as 0%)."""
    runtime = data.get("runtime")
    gpus = runtime.get("gpus") if isinstance(runtime, Mapping) else None
    if not isinstance(gpus, list) or not gpus:
        return None
    found = tuple(
        GpuUse(_percent(g.get("util")), _percent(g.get("memoryUtil"))) for g in gpus if isinstance(g, Mapping)
    )
    return found if any(g.util is not None for g in found) else None


def _billing_from_v2(data: Any) -> PodBilling:
    meta = data.get("metadata") if isinstance(data, Mapping) else None
    records = data.get("records") if isinstance(data, Mapping) else None
    if not isinstance(meta, Mapping) or not isinstance(records, list):
        raise RunPodError("unexpected pod billing answer from RunPod REST v2", operation="pod billing")
    totals, query = meta.get("totals") or {}, meta.get("query") or {}
    total = totals.get("totalAmount") if isinstance(totals, Mapping) else None
    if not isinstance(total, (int, float)) or isinstance(total, bool):
        total = sum(float(r.get("totalAmount") or 0) for r in records if isinstance(r, Mapping))
    return PodBilling(float(total), query.get("startTime"), query.get("endTime"), len(records))


def _pod_from_v2(data: Mapping[str, Any]) -> Pod:
    if not isinstance(data, Mapping) or not data.get("id"):
        raise RunPodError("unexpected pod object from RunPod REST v2", operation="parse pod")
    status = str(data.get("status") or "")
    gpu = data.get("gpu") or {}
    network = ((data.get("mounts") or {}).get("network")) or []
    running = status == RUNNING
    return Pod(
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        status=status,
        desired_status=None,
        interruptible=None,
        gpu_type=gpu.get("id"),
        gpu_count=int(gpu.get("count") or 0),
        cost_per_hr=float(data.get("cost") or 0.0),
        data_center=data.get("dataCenterId"),
        volume_id=network[0].get("volumeId") if network else None,
        ssh=_ssh_from_v2(data) if running else None,  # runtime can be stale unless RUNNING
        last_status_change=None,
        started_at=data.get("startedAt"),
        image=data.get("image"),
        created_at=data.get("createdAt"),
        gpu_use=_gpu_use_from_v2(data) if running else None,
    )


def _catalog_price_from_v2(
    data: Any, gpu_type: str, cloud: str, gpu_count: int, data_center: str | None
) -> CatalogPrice:
    """Parse GET /v2/catalog/gpus/{id}?include=AVAILABILITY: `price.<cloud>` per GPU and the stock in
    `data_center` ("NONE" where the catalog omits it: it lists only data centers that offer the
    configuration, and omits `dataCenters` entirely when none does). An absent price is an error that
    names the field, never a guess."""
    operation = "on-demand price (v2 catalog)"
    field = price_field(cloud)
    prices = data.get("price") if isinstance(data, Mapping) else None
    value = prices.get(cloud.lower()) if isinstance(prices, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        shown = "absent" if value is None else repr(value)
        raise RunPodError(
            f"RunPod's GPU catalog gave no usable `{field}` for {gpu_type} ({shown})",
            operation=operation,
            hint="RunPod's catalog changed shape: `python -m runner.livecheck` shows what it answers now",
        )
    dcs = data.get("dataCenters") if isinstance(data, Mapping) else None
    stock = "NONE"
    if isinstance(dcs, list):
        entries = [dc for dc in dcs if isinstance(dc, Mapping)]
        match = next((dc for dc in entries if dc.get("id") == data_center), None) if data_center else None
        chosen = match if data_center else (entries[0] if entries else None)
        if chosen is not None:
            stock = str(chosen.get("availability") or "NONE").upper()
    return CatalogPrice(gpu_type=gpu_type, cloud=cloud, per_gpu=float(value), gpu_count=gpu_count, stock=stock)


def _volume_from_v2(data: Mapping[str, Any]) -> NetworkVolume:
    if not isinstance(data, Mapping) or not data.get("id"):
        raise RunPodError("unexpected network volume object from RunPod REST v2", operation="parse volume")
    return NetworkVolume(
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        size_gb=int(data.get("size") or 0),
        data_center=str(data.get("dataCenter") or ""),
        type=str(data.get("type") or "STANDARD"),
    )
