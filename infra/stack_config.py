"""Stack configuration: one frozen dataclass, validated before anything is created.

`StackConfig.from_mapping()` is pure (tests call it directly); `StackConfig.load()` reads the
stack's `runpod-trainer:*` keys through pulumi.Config and the public key file, then delegates.
Every problem is collected and reported at once, each with the key to change.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from infra.config_checks import MAX_SANE_PRICE_PER_GPU as MAX_SANE_PRICE_PER_GPU
from infra.config_checks import SSH_PORT_SPEC, Problems
from infra.config_checks import validate_public_key as validate_public_key
from infra.stack_pods import pod_names

PROJECT = "runpod-trainer"
WORKSPACE = "/workspace"
SSH_USER = "root"
SPOT_FALLBACKS = ("fail", "on-demand")

DEFAULT_GPU_TYPE = "NVIDIA GeForce RTX 4090"
DEFAULT_IMAGE = "runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204"
DEFAULT_BID_PER_GPU = 0.50
DEFAULT_DATA_CENTER = "EU-RO-1"
DEFAULT_VOLUME_SIZE_GB = 100
DEFAULT_CONTAINER_DISK_GB = 50
DEFAULT_CREATE_TIMEOUT_MINUTES = 15
DEFAULT_IDLE_STOP_MINUTES = 20  # the pod stops itself after this long unused (0: never)
IDLE_STOP_RANGE = (0, 7 * 24 * 60)  # minutes
# The stall guard (remote/podside/stallguard.py): no output and no new checkpoint this long stops a run
# (0: off). 45: a first model download or a long evaluation without a progress bar stays under it.
DEFAULT_STALL_MINUTES = 45
STALL_RANGE = (0, 7 * 24 * 60)  # minutes

MAX_GPU_COUNT = 8
VOLUME_SIZE_RANGE = (10, 4096)  # RunPod REST v2 limits; volumes can grow, never shrink
CONTAINER_DISK_RANGE = (10, 2048)
CREATE_TIMEOUT_RANGE = (1, 120)  # minutes

# Secure Cloud data centers have 7-8 character codes like EU-RO-1, US-KS-2, CA-MTL-1, EUR-IS-1;
# Community Cloud regions are 2-letter country codes (US, CZ) and cannot hold network volumes.
_DATA_CENTER_RE = re.compile(r"^[A-Z]{2,4}-[A-Z]{2,4}-[0-9]{1,2}$")
_REPO_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")

# camelCase config key -> what it holds (used for unknown-key hints and the docs).
KNOWN_KEYS = (
    "gpuType",
    "gpuCount",
    "bidPerGpu",
    "spotFallback",
    "maxOnDemandPricePerGpu",
    "cloudType",
    "dataCenter",
    "volumeName",
    "volumeSizeGb",
    "image",
    "containerDiskGb",
    "ports",
    "repoName",
    "sshPublicKey",
    "sshPublicKeyPath",
    "podName",
    "createTimeoutMinutes",
    "idleStopMinutes",
    "podCount",
    "podNames",
    "autoResume",
    "stallMinutes",
)


@dataclass(frozen=True)
class StackConfig:
    repo_name: str
    ssh_public_key: str
    gpu_type: str = DEFAULT_GPU_TYPE
    gpu_count: int = 1
    bid_per_gpu: float = DEFAULT_BID_PER_GPU
    spot_fallback: str = "fail"
    max_on_demand_price_per_gpu: float | None = None
    cloud_type: str = "SECURE"
    data_center: str = DEFAULT_DATA_CENTER
    volume_name: str | None = None  # None: the program derives "<project>-<stack>-volume"
    volume_size_gb: int = DEFAULT_VOLUME_SIZE_GB
    image: str = DEFAULT_IMAGE
    container_disk_gb: int = DEFAULT_CONTAINER_DISK_GB
    ports: tuple[str, ...] = (SSH_PORT_SPEC,)
    pod_name: str | None = None  # None: the program derives "<project>-<stack>"
    create_timeout_s: int = DEFAULT_CREATE_TIMEOUT_MINUTES * 60
    idle_stop_minutes: int = DEFAULT_IDLE_STOP_MINUTES
    auto_resume: bool = True  # the pod resumes the volume's unfinished run when its container starts
    stall_minutes: int = DEFAULT_STALL_MINUTES
    workspace: str = WORKSPACE
    ssh_user: str = SSH_USER
    # The pods' names when the stack has several on its volume (podCount / podNames); () = one pod, as
    # every stack before them. The first name is the first pod, whose resource and outputs never change.
    pods: tuple[str, ...] = ()

    def pod_env(self) -> dict[str, str]:
        """The environment every pod of this stack gets."""
        return {
            "HF_HOME": f"{self.workspace}/.cache/huggingface",
            "PYTHONPATH": f"{self.workspace}/{self.repo_name}",
            "PUBLIC_KEY": self.ssh_public_key,
        }

    @classmethod
    def load(cls, project: str | None = None) -> StackConfig:
        """Read the current stack's config (namespace = project name). Raises ConfigError (infra/config_checks.py)."""
        project = project or pulumi.get_project()
        cfg = pulumi.Config(project)
        values: dict[str, Any] = {}
        for key in KNOWN_KEYS:
            raw = cfg.get(key)
            if raw is not None:
                values[key] = raw
        unknown = sorted(k for k in _present_project_keys(project) if k not in KNOWN_KEYS)
        return cls.from_mapping(values, unknown_keys=unknown, project=project)

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        unknown_keys: list[str] | None = None,
        project: str = PROJECT,
        read_text: Callable[[Path], str] | None = None,
    ) -> StackConfig:
        """Validate raw config values (strings as pulumi.Config returns them, or typed values)."""
        p = Problems(project)
        read_text = read_text or _read_text

        for key in unknown_keys if unknown_keys is not None else [k for k in values if k not in KNOWN_KEYS]:
            hint = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            p.add(
                key,
                "is not a setting of this project"
                + (f"; did you mean {hint[0]}?" if hint else f"; known keys: {', '.join(KNOWN_KEYS)}"),
            )

        gpu_type = p.text(values, "gpuType", DEFAULT_GPU_TYPE)
        gpu_count = p.integer(values, "gpuCount", 1, 1, MAX_GPU_COUNT)
        bid = p.price(values, "bidPerGpu", DEFAULT_BID_PER_GPU)

        fallback = str(values.get("spotFallback", "fail")).strip().lower()
        if fallback not in SPOT_FALLBACKS:
            p.add("spotFallback", f"must be 'fail' or 'on-demand' (got {values.get('spotFallback')!r})")
        max_od = p.price(values, "maxOnDemandPricePerGpu", None)
        if fallback == "on-demand" and max_od is None and "maxOnDemandPricePerGpu" not in values:
            p.add(
                "maxOnDemandPricePerGpu",
                "is required with spotFallback: on-demand (the most you accept "
                "to pay per GPU-hour on demand), e.g. `pulumi config set maxOnDemandPricePerGpu 0.70`",
            )
        if fallback == "fail" and "maxOnDemandPricePerGpu" in values:
            p.add(
                "maxOnDemandPricePerGpu",
                "only applies with spotFallback: on-demand; remove it "
                "(`pulumi config rm maxOnDemandPricePerGpu`) or set spotFallback to on-demand",
            )

        cloud = str(values.get("cloudType", "SECURE")).strip().upper()
        if cloud in ("COMMUNITY", "ALL"):
            p.add(
                "cloudType",
                f"{cloud} cannot work: network volumes exist only in Secure Cloud, so a "
                "Community Cloud pod could never mount this stack's volume. Set cloudType to SECURE",
            )
        elif cloud != "SECURE":
            p.add("cloudType", f"must be SECURE (got {values.get('cloudType')!r})")

        dc = str(values.get("dataCenter", DEFAULT_DATA_CENTER)).strip().upper()
        if not _DATA_CENTER_RE.match(dc):
            p.add(
                "dataCenter",
                f"{values.get('dataCenter')!r} is not a Secure Cloud data center code "
                "(like EU-RO-1, US-KS-2, EUR-IS-1); 2-letter Community Cloud regions such as US or CZ "
                "cannot hold network volumes",
            )

        volume_name = p.name(values, "volumeName")
        volume_size = p.integer(values, "volumeSizeGb", DEFAULT_VOLUME_SIZE_GB, *VOLUME_SIZE_RANGE)
        image = p.text(values, "image", DEFAULT_IMAGE)
        if image and any(c.isspace() for c in image):
            p.add("image", f"must be an image reference without spaces (got {image!r})")
        disk = p.integer(values, "containerDiskGb", DEFAULT_CONTAINER_DISK_GB, *CONTAINER_DISK_RANGE)
        ports = p.ports(values)

        repo_name = str(values.get("repoName", "")).strip()
        if not repo_name:
            p.add(
                "repoName",
                "is required: the directory name of your training repository under "
                "/workspace (PYTHONPATH points there), e.g. `pulumi config set repoName my-repo`",
            )
        elif not _REPO_NAME_RE.match(repo_name) or repo_name in (".", ".."):
            p.add("repoName", f"must be a plain directory name (letters, digits, . _ -), got {repo_name!r}")

        public_key = p.public_key(values, read_text)
        pod_name = p.name(values, "podName")
        timeout_min = p.integer(values, "createTimeoutMinutes", DEFAULT_CREATE_TIMEOUT_MINUTES, *CREATE_TIMEOUT_RANGE)
        idle_min = p.integer(values, "idleStopMinutes", DEFAULT_IDLE_STOP_MINUTES, *IDLE_STOP_RANGE)
        pods = pod_names(values, p)
        auto_resume = p.boolean(values, "autoResume", True)
        stall_min = p.integer(values, "stallMinutes", DEFAULT_STALL_MINUTES, *STALL_RANGE)

        p.raise_if_any()
        return cls(
            repo_name=repo_name,
            ssh_public_key=public_key,
            gpu_type=gpu_type,
            gpu_count=gpu_count,
            bid_per_gpu=bid,
            spot_fallback=fallback,
            max_on_demand_price_per_gpu=max_od,
            cloud_type=cloud,
            data_center=dc,
            volume_name=volume_name,
            volume_size_gb=volume_size,
            image=image,
            container_disk_gb=disk,
            ports=ports,
            pod_name=pod_name,
            create_timeout_s=timeout_min * 60,
            idle_stop_minutes=idle_min,
            pods=pods,
            auto_resume=auto_resume,
            stall_minutes=stall_min,
        )


def default_name(project: str, stack: str, suffix: str = "") -> str:
    """A RunPod-safe physical name derived from project and stack (computed in the program)."""
    raw = "-".join(x for x in (project, stack, suffix) if x)
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-._") or "runpod-trainer"
    return clean[:64]


# ---------------------------------------------------------------- internals
def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _present_project_keys(project: str) -> list[str]:
    """Config keys set for this project (explicit config plus PULUMI_CONFIG), without namespace."""
    from pulumi.runtime import config as rt_config

    keys = set(rt_config.CONFIG.get()) | set(rt_config.get_config_env())
    prefix = project + ":"
    return [k[len(prefix) :] for k in keys if k.startswith(prefix)]
