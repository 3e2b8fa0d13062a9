"""The Pulumi program: stack config -> network volume + spot pod -> stack outputs (docs/reference/stack.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.pod_resource import PodArgs, SpotPod
from infra.stack_config import StackConfig, default_name
from infra.volume_resource import NetworkVolume, VolumeArgs


@dataclass(frozen=True)
class Stack:
    config: StackConfig
    volume: NetworkVolume
    pod: SpotPod
    outputs: dict[str, Any]  # exactly the exported names -> Output or plain value


def build(cfg: StackConfig | None = None) -> Stack:
    """Declare the resources of the current stack; returns them (tests inspect this)."""
    cfg = cfg or StackConfig.load()
    project, stack = pulumi.get_project(), pulumi.get_stack()
    # Physical names are computed here: inside the provider process the stack is always "stack".
    pod_name = cfg.pod_name or default_name(project, stack)
    volume_name = cfg.volume_name or default_name(project, stack, "volume")

    volume = NetworkVolume(
        "volume",
        VolumeArgs(volume_name=volume_name, size_gb=cfg.volume_size_gb, data_center=cfg.data_center),
    )
    pod = SpotPod(
        "pod",
        PodArgs(
            pod_name=pod_name,
            image=cfg.image,
            gpu_type=cfg.gpu_type,
            gpu_count=cfg.gpu_count,
            data_center=cfg.data_center,
            cloud_type=cfg.cloud_type,
            # The resource ID, not an output property: it stays known in previews of in-place
            # volume updates, so the pod is not shown as replaced when only the volume grows.
            volume_id=volume.id,
            volume_mount_path=cfg.workspace,
            container_disk_gb=cfg.container_disk_gb,
            ports=cfg.ports,
            env=cfg.pod_env(),
            bid_per_gpu=cfg.bid_per_gpu,
            spot_fallback=cfg.spot_fallback,
            max_on_demand_price_per_gpu=cfg.max_on_demand_price_per_gpu,
            create_timeout_s=cfg.create_timeout_s,
            idle_stop_minutes=cfg.idle_stop_minutes,
        ),
        pulumi.ResourceOptions(depends_on=[volume]),
    )
    outputs: dict[str, Any] = {
        "pod_id": pod.id,
        "ssh_host": pod.ssh_host,
        "ssh_port": pod.ssh_port,
        "ssh_user": pod.ssh_user,
        "volume_id": volume.id,
        "data_center": cfg.data_center,
        "gpu_type": cfg.gpu_type,
        "gpu_count": cfg.gpu_count,
        "market": pod.market,
        "bid_per_gpu": pod.bid_per_gpu,
        "cost_per_hr": pod.cost_per_hr,
        "workspace": cfg.workspace,
        "spot_fallback": cfg.spot_fallback,
        "max_on_demand_price": cfg.max_on_demand_price_per_gpu,
        "pod_name": pod_name,
        "image": cfg.image,
        # For `pulumi up --replace <pod_urn>`: the runner moves a stopped pod that cannot be resumed
        # on its host (a refresh keeps a stopped pod; only a replacement puts it elsewhere).
        "pod_urn": pod.urn,
        # The runner starts the same idle stop after every launch (RT_IDLE_STOP_MINUTES).
        "idle_stop_minutes": cfg.idle_stop_minutes,
        # The run's policies every launch records in its spec on the volume (remote/podside/runspec.py):
        # RT_AUTO_RESUME and the stall guard's RT_STALL_MINUTES default.
        "auto_resume": cfg.auto_resume,
        "stall_minutes": cfg.stall_minutes,
    }
    return Stack(config=cfg, volume=volume, pod=pod, outputs=outputs)


def main() -> None:
    stack = build()
    for name, value in stack.outputs.items():
        pulumi.export(name, value)
