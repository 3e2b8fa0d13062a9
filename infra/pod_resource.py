"""The spot GPU pod as a Pulumi dynamic resource (`runpod:SpotPod`).

create: spot with the bid (or on-demand by policy), then wait for RUNNING + an SSH banner under
the pod's own deadline; on any failure the pod is terminated before the error is raised.
read: current status/endpoint; a pod that no longer exists leaves the state.
update: only what RunPod keeps outside the pod (bid, fallback policy, deadline) and the idle stop's
time (the pod's start command keeps the time it was created with; the runner gives every launch the
new one); everything else replaces the pod, deleting the old one first (a network volume and a
budget fit one pod).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from backends.runpod.client import RunPodClient
from backends.runpod.models import TERMINATED, Pod, PodSpec
from infra import pod_lifecycle as life
from infra import provider_support as ps
from infra.config import DEFAULT_IDLE_STOP_MINUTES, SPOT_FALLBACKS, SSH_USER, WORKSPACE
from remote.podside.bundle import idle_start_command

REPLACE_KEYS = (
    "pod_name",
    "image",
    "gpu_type",
    "gpu_count",
    "data_center",
    "cloud_type",
    "volume_id",
    "volume_mount_path",
    "container_disk_gb",
    "ports",
    "env",
)
# idle_stop_minutes: an update, so that stacks from before the idle stop keep their pods.
UPDATE_KEYS = ("bid_per_gpu", "spot_fallback", "max_on_demand_price_per_gpu", "create_timeout_s", "idle_stop_minutes")
INPUT_KEYS = REPLACE_KEYS + UPDATE_KEYS
OUTPUT_KEYS = (
    "pod_id",
    "market",
    "status",
    "ssh_host",
    "ssh_port",
    "ssh_user",
    "cost_per_hr",
    "last_status_change",
    "started_at",
    "preempted",
)
_INT_KEYS = ("gpu_count", "container_disk_gb", "create_timeout_s")  # required, above 0
_FLOAT_KEYS = ("bid_per_gpu", "max_on_demand_price_per_gpu")


@dataclass(frozen=True)
class PodArgs:
    pod_name: str
    image: str
    gpu_type: str
    gpu_count: int
    data_center: str
    volume_id: Any  # str, or a pulumi Output when built by the program
    container_disk_gb: int
    bid_per_gpu: float
    spot_fallback: str
    max_on_demand_price_per_gpu: float | None
    create_timeout_s: int
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[str, ...] = ("22/tcp",)
    cloud_type: str = "SECURE"
    volume_mount_path: str = WORKSPACE
    idle_stop_minutes: int = DEFAULT_IDLE_STOP_MINUTES

    def to_inputs(self) -> dict[str, Any]:
        return {
            "pod_name": self.pod_name,
            "image": self.image,
            "gpu_type": self.gpu_type,
            "gpu_count": self.gpu_count,
            "data_center": self.data_center,
            "cloud_type": self.cloud_type,
            "volume_id": self.volume_id,
            "volume_mount_path": self.volume_mount_path,
            "container_disk_gb": self.container_disk_gb,
            "ports": list(self.ports),
            "env": dict(self.env),
            "bid_per_gpu": self.bid_per_gpu,
            "spot_fallback": self.spot_fallback,
            "max_on_demand_price_per_gpu": self.max_on_demand_price_per_gpu,
            "create_timeout_s": self.create_timeout_s,
            "idle_stop_minutes": self.idle_stop_minutes,
        }

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> PodArgs:
        """Plain values from what the engine hands the provider (numbers as float)."""
        return cls(
            pod_name=str(props["pod_name"]),
            image=str(props["image"]),
            gpu_type=str(props["gpu_type"]),
            gpu_count=ps.as_int(props["gpu_count"]),
            data_center=str(props["data_center"]).upper(),
            cloud_type=str(props.get("cloud_type") or "SECURE").upper(),
            volume_id=str(props["volume_id"]),
            volume_mount_path=str(props.get("volume_mount_path") or WORKSPACE),
            container_disk_gb=ps.as_int(props["container_disk_gb"]),
            ports=tuple(str(p) for p in props.get("ports") or ("22/tcp",)),
            env={str(k): str(v) for k, v in (props.get("env") or {}).items()},
            bid_per_gpu=ps.as_float(props["bid_per_gpu"]),
            spot_fallback=str(props.get("spot_fallback") or "fail"),
            max_on_demand_price_per_gpu=ps.opt_float(props.get("max_on_demand_price_per_gpu")),
            create_timeout_s=ps.as_int(props["create_timeout_s"]),
            idle_stop_minutes=ps.as_int(props.get("idle_stop_minutes", DEFAULT_IDLE_STOP_MINUTES)),
        )

    def spec(self) -> PodSpec:
        return PodSpec(
            name=self.pod_name,
            image=self.image,
            gpu_type=self.gpu_type,
            gpu_count=self.gpu_count,
            data_center=self.data_center,
            volume_id=self.volume_id,
            container_disk_gb=self.container_disk_gb,
            volume_mount_path=self.volume_mount_path,
            ports=tuple(self.ports),
            env=dict(self.env),
            cloud_type=self.cloud_type,
            start_command=(
                idle_start_command(self.idle_stop_minutes * 60, self.volume_mount_path)
                if self.idle_stop_minutes > 0
                else ""
            ),
        )


def _norm(key: str, value: Any) -> Any:
    """Comparable form of one input: floats from the engine equal the ints the program sent."""
    if value is None or ps.is_unknown(value):
        return value
    try:
        if key in _INT_KEYS:
            return ps.as_int(value)
        if key in _FLOAT_KEYS:
            return ps.as_float(value)
    except (TypeError, ValueError):
        return value
    if key == "ports":
        return tuple(str(p) for p in value)
    if key == "env":
        return tuple(sorted((str(k), str(v)) for k, v in dict(value).items()))
    if key in ("data_center", "cloud_type"):
        return str(value).upper()
    return value


def _market_of(pod: Pod, fallback: str | None) -> str | None:
    if pod.interruptible is None:
        return fallback
    return life.SPOT if pod.interruptible else life.ON_DEMAND


def _observed(pod: Pod, market: str | None) -> dict[str, Any]:
    ssh = pod.ssh if pod.is_running else None  # a stopped pod's endpoint is stale
    return {
        "pod_id": pod.id,
        "market": _market_of(pod, market),
        "status": pod.status,
        "ssh_host": ssh.host if ssh else None,
        "ssh_port": int(ssh.port) if ssh else None,
        "ssh_user": ssh.user if ssh else SSH_USER,
        "cost_per_hr": float(pod.cost_per_hr),
        "last_status_change": pod.last_status_change,
        "started_at": pod.started_at,
        "preempted": bool(pod.was_outbid and not pod.is_running),
    }


# Pulumi pickles this provider by reference (module path + class name) into every stack's state:
# keep it in infra/pod_resource.py and named PodProvider, or existing stacks can no longer be read.
class PodProvider(ps.RunPodProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = dict(news)
        failures: list[CheckFailure] = []
        for key in _INT_KEYS + _FLOAT_KEYS:
            value = news.get(key)
            if value is None or ps.is_unknown(value):
                if value is None and key != "max_on_demand_price_per_gpu":
                    failures.append(CheckFailure(key, "is required"))
                continue
            try:
                inputs[key] = ps.as_int(value) if key in _INT_KEYS else ps.as_float(value)
            except (TypeError, ValueError):
                failures.append(CheckFailure(key, f"must be a number, got {value!r}"))
                continue
            if inputs[key] <= 0:
                failures.append(CheckFailure(key, f"must be above 0, got {value!r}"))
        idle = news.get("idle_stop_minutes", DEFAULT_IDLE_STOP_MINUTES)
        if not ps.is_unknown(idle):
            try:
                inputs["idle_stop_minutes"] = ps.as_int(idle)
                if inputs["idle_stop_minutes"] < 0:
                    raise ValueError
            except (TypeError, ValueError):
                failures.append(
                    CheckFailure("idle_stop_minutes", f"must be a whole number of minutes >= 0, got {idle!r}")
                )
        if news.get("spot_fallback") not in SPOT_FALLBACKS:
            failures.append(CheckFailure("spot_fallback", f"must be one of {SPOT_FALLBACKS}"))
        if news.get("spot_fallback") == life.ON_DEMAND and news.get("max_on_demand_price_per_gpu") is None:
            failures.append(CheckFailure("max_on_demand_price_per_gpu", "is required with an on-demand fallback"))
        if str(news.get("cloud_type", "SECURE")).upper() != "SECURE":
            failures.append(CheckFailure("cloud_type", "must be SECURE: network volumes exist only in Secure Cloud"))
        for key in ("pod_name", "image", "gpu_type", "data_center", "volume_id"):
            if not news.get(key):
                failures.append(CheckFailure(key, "must not be empty"))
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # `olds` are the stored outputs (they echo the inputs); __provider is deliberately ignored.
        changed = [k for k in INPUT_KEYS if _norm(k, olds.get(k)) != _norm(k, news.get(k))]
        replaces = [k for k in changed if k in REPLACE_KEYS]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        args = PodArgs.from_props(props)
        client = ps.make_client()
        pod, market = life.obtain_pod(
            client,
            args.spec(),
            bid_per_gpu=args.bid_per_gpu,
            spot_fallback=args.spot_fallback,
            max_on_demand_price_per_gpu=args.max_on_demand_price_per_gpu,
        )
        try:
            ready = life.wait_until_reachable(client, pod.id, timeout_s=args.create_timeout_s)
        except BaseException as exc:
            # A failed create records no ID in the state: whatever we leave behind would bill unseen.
            outcome = _terminate_after_failure(client, pod.id)
            if isinstance(exc, Exception):
                raise life.PodCreateError(f"{exc}. {outcome}") from exc
            raise
        return CreateResult(pod.id, {**args.to_inputs(), **_observed(ready, market)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        pod = ps.make_client().find_pod(id_, with_history=True)
        if pod is None or pod.status == TERMINATED:
            return ReadResult(None, {})  # gone: dropped from state, the next `pulumi up` recreates it
        return ReadResult(id_, {**ps.without_provider(props), **_observed(pod, props.get("market"))})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only UPDATE_KEYS can differ here (diff replaces on the rest). They are ours, not RunPod's:
        # the new bid is used by the next resume, the policy and deadline by the next create.
        args = PodArgs.from_props(news)
        outs = {**ps.without_provider(olds), **args.to_inputs()}
        pod = ps.make_client().find_pod(id_, with_history=True)
        if pod is not None:
            outs.update(_observed(pod, olds.get("market")))
        return UpdateResult(outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        life.terminate_and_wait(ps.make_client(), id_)


def _terminate_after_failure(client: RunPodClient, pod_id: str) -> str:
    try:
        life.terminate_and_wait(client, pod_id, timeout_s=60)
    except Exception as exc:  # noqa: BLE001 - report, the original error is what matters
        return (
            f"Terminating pod {pod_id} FAILED too ({exc}); it may still be billing: terminate it in the RunPod console."
        )
    return f"Pod {pod_id} was terminated, so nothing keeps billing."


class SpotPod(pulumi.dynamic.Resource, module="runpod", name="SpotPod"):
    pod_id: pulumi.Output[str]
    market: pulumi.Output[str]
    status: pulumi.Output[str]
    ssh_host: pulumi.Output[str | None]
    ssh_port: pulumi.Output[int | None]
    ssh_user: pulumi.Output[str]
    cost_per_hr: pulumi.Output[float]
    last_status_change: pulumi.Output[str | None]
    started_at: pulumi.Output[str | None]
    preempted: pulumi.Output[bool]
    pod_name: pulumi.Output[str]
    image: pulumi.Output[str]
    gpu_type: pulumi.Output[str]
    gpu_count: pulumi.Output[int]
    data_center: pulumi.Output[str]
    volume_id: pulumi.Output[str]
    bid_per_gpu: pulumi.Output[float]

    def __init__(self, resource_name: str, args: PodArgs, opts: pulumi.ResourceOptions | None = None):
        props = {**args.to_inputs(), **{k: None for k in OUTPUT_KEYS}}
        super().__init__(PodProvider(), resource_name, props, opts)
