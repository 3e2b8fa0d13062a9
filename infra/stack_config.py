"""Stack configuration: one frozen dataclass, validated before anything is created.

`StackConfig.from_mapping()` is pure (tests call it directly); `StackConfig.load()` reads the
stack's `runpod-trainer:*` keys through pulumi.Config and the public key file, then delegates.
Every problem is collected and reported at once, each with the key to change.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
import os
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import pulumi

PROJECT = "runpod-trainer"
WORKSPACE = "/workspace"
SSH_USER = "root"
SSH_PORT_SPEC = "22/tcp"
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
# A per-GPU-hour price above this is almost certainly a typo (50 instead of 0.50): refuse it
# rather than bid or pay it.
MAX_SANE_PRICE_PER_GPU = 20.0

# Secure Cloud data centers have 7-8 character codes like EU-RO-1, US-KS-2, CA-MTL-1, EUR-IS-1;
# Community Cloud regions are 2-letter country codes (US, CZ) and cannot hold network volumes.
_DATA_CENTER_RE = re.compile(r"^[A-Z]{2,4}-[A-Z]{2,4}-[0-9]{1,2}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REPO_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
_PORT_RE = re.compile(r"^([0-9]{1,5})/(tcp|http)$")
_SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)

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
    "autoResume",
    "stallMinutes",
)


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. RunError makes `pulumi preview` print only this message."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"Invalid stack configuration ({len(self.problems)} problem"
            f"{'' if len(self.problems) == 1 else 's'}):\n{lines}\n"
            f"Change it with `pulumi config set <key> <value>` (or edit Pulumi.<stack>.yaml) "
            f"and run `pulumi preview` again."
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

    def pod_env(self) -> dict[str, str]:
        """The environment every pod of this stack gets."""
        return {
            "HF_HOME": f"{self.workspace}/.cache/huggingface",
            "PYTHONPATH": f"{self.workspace}/{self.repo_name}",
            "PUBLIC_KEY": self.ssh_public_key,
        }

    @classmethod
    def load(cls, project: str | None = None) -> StackConfig:
        """Read the current stack's config (namespace = project name). Raises ConfigError."""
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
        p = _Problems(project)
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
            auto_resume=auto_resume,
            stall_minutes=stall_min,
        )


def default_name(project: str, stack: str, suffix: str = "") -> str:
    """A RunPod-safe physical name derived from project and stack (computed in the program)."""
    raw = "-".join(x for x in (project, stack, suffix) if x)
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-._") or "runpod-trainer"
    return clean[:64]


def validate_public_key(text: str) -> str | None:
    """None when `text` is one OpenSSH public key line, else why not (never quoting the text)."""
    if "PRIVATE KEY" in text or text.lstrip().startswith("-----BEGIN"):
        return (
            "is a PRIVATE key. Configure the public half instead (the .pub file, one line "
            "starting with ssh-ed25519 / ssh-rsa / ecdsa-sha2-...); the private key stays on your machine"
        )
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        return "must be exactly one OpenSSH public key line (like the content of ~/.ssh/id_ed25519.pub)"
    parts = lines[0].split()
    if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES:
        return (
            "does not look like an OpenSSH public key: it must start with one of "
            f"{', '.join(_SSH_KEY_TYPES)} followed by the base64 key"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (n,) = struct.unpack(">I", blob[:4])
        embedded = blob[4 : 4 + n].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        return "has a damaged base64 part; copy the whole line from your .pub file again"
    if embedded != parts[0]:
        return f"is inconsistent: the line says {parts[0]} but the key data is {embedded!r}; copy the .pub file again"
    return None


# ---------------------------------------------------------------- internals
def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _present_project_keys(project: str) -> list[str]:
    """Config keys set for this project (explicit config plus PULUMI_CONFIG), without namespace."""
    from pulumi.runtime import config as rt_config

    keys = set(rt_config.CONFIG.get()) | set(rt_config.get_config_env())
    prefix = project + ":"
    return [k[len(prefix) :] for k in keys if k.startswith(prefix)]


class _Problems:
    """Collects every problem; each mentions the full config key so the fix is obvious."""

    def __init__(self, project: str):
        self.project = project
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{self.project}:{key} {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)

    def text(self, values: Mapping[str, Any], key: str, default: str) -> str:
        raw = values.get(key, default)
        val = str(raw).strip() if raw is not None else ""
        if not val:
            self.add(key, "must not be empty")
        return val

    def integer(self, values: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
        if key not in values:
            return default
        val = _as_number(values[key])
        if val is None or val != int(val) or not lo <= val <= hi:
            self.add(key, f"must be a whole number from {lo} to {hi} (got {values[key]!r})")
            return default
        return int(val)

    def boolean(self, values: Mapping[str, Any], key: str, default: bool) -> bool:
        if key not in values:
            return default
        raw = values[key]
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        self.add(key, f"must be true or false (got {raw!r})")
        return default

    @overload
    def price(self, values: Mapping[str, Any], key: str, default: float) -> float: ...

    @overload
    def price(self, values: Mapping[str, Any], key: str, default: None) -> float | None: ...

    def price(self, values: Mapping[str, Any], key: str, default: float | None) -> float | None:
        if key not in values:
            return default
        val = _as_number(values[key])
        if val is None or not 0 < val <= MAX_SANE_PRICE_PER_GPU:
            self.add(
                key,
                f"must be a price in USD per GPU-hour, above 0 and at most "
                f"{MAX_SANE_PRICE_PER_GPU:g} (got {values[key]!r})",
            )
            return default
        return float(val)

    def name(self, values: Mapping[str, Any], key: str) -> str | None:
        if key not in values or values[key] in (None, ""):
            return None
        val = str(values[key]).strip()
        if not _NAME_RE.match(val):
            self.add(key, f"must be 1-64 characters of letters, digits, '.', '_' or '-' (got {val!r})")
            return None
        return val

    def ports(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        raw = values.get("ports", [SSH_PORT_SPEC])
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip().startswith("[") else [x for x in raw.split(",")]
            except json.JSONDecodeError:
                raw = None
        if not isinstance(raw, (list, tuple)):
            self.add("ports", 'must be a list like ["22/tcp", "6006/http"]')
            return (SSH_PORT_SPEC,)
        out: list[str] = []
        for item in raw:
            spec = str(item).strip().lower()
            m = _PORT_RE.match(spec)
            if not m or not 1 <= int(m.group(1)) <= 65535:
                self.add("ports", f"entry {item!r} must look like 22/tcp or 6006/http")
            elif spec not in out:
                out.append(spec)
        if SSH_PORT_SPEC not in out:
            self.add("ports", "must include 22/tcp: the runner reaches the pod over SSH")
        return tuple(out) or (SSH_PORT_SPEC,)

    def public_key(self, values: Mapping[str, Any], read_text: Callable[[Path], str]) -> str:
        inline = str(values.get("sshPublicKey") or "").strip()
        path = str(values.get("sshPublicKeyPath") or "").strip()
        if inline and path:
            self.add(
                "sshPublicKey",
                "and sshPublicKeyPath are both set; keep one "
                "(`pulumi config rm sshPublicKeyPath` or `pulumi config rm sshPublicKey`)",
            )
            return ""
        if not inline and not path:
            self.add(
                "sshPublicKey",
                "is required (or sshPublicKeyPath): the OpenSSH public key the pod "
                "accepts, e.g. `pulumi config set sshPublicKeyPath ~/.ssh/id_ed25519.pub`",
            )
            return ""
        key = "sshPublicKey"
        text = inline
        if path:
            key = "sshPublicKeyPath"
            file = Path(os.path.expanduser(path))
            try:
                text = read_text(file)
            except OSError as exc:
                self.add(key, f"cannot read {str(file)!r} ({exc.strerror or exc}); point it at your .pub file")
                return ""
        problem = validate_public_key(text)
        if problem:
            self.add(key, (f"file {path!r} " if path else "") + problem)
            return ""
        return " ".join(text.strip().split())


def _as_number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw) if math.isfinite(raw) else None
    try:
        val = float(str(raw).strip())
    except ValueError:
        return None
    return val if math.isfinite(val) else None
