"""The fake RunPod account: pods, network volumes, prices and the rules RunPod enforces.

Pure Python, no HTTP. Pod phases advance lazily from the clock (no background threads).
Every mutation goes through FakeState under its one lock; API handlers raise ApiError, which the
REST layer renders as problem+json and the GraphQL layer as an `errors` entry.
"""

from __future__ import annotations

import random
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

PROVISIONING, STARTING, RUNNING, EXITED, ERROR, TERMINATED = (
    "PROVISIONING",
    "STARTING",
    "RUNNING",
    "EXITED",
    "ERROR",
    "TERMINATED",
)
BOOT = "BOOT"  # internal phase: PROVISIONING -> STARTING -> RUNNING by elapsed time

ACTIONS = {
    PROVISIONING: ["stop", "terminate"],
    STARTING: ["stop", "terminate"],
    RUNNING: ["stop", "restart", "terminate"],
    EXITED: ["start", "terminate"],
    ERROR: ["start", "terminate"],
    TERMINATED: [],
}

# The exact texts RunPod returns (docs/reference §11).
MSG_NO_CAPACITY = (
    "There are no longer any instances available with the requested specifications. Please refresh and try again."
)
MSG_NOT_ENOUGH_GPUS = "There are not enough free GPUs on the host machine to start this pod."
MSG_SOMETHING_WRONG = "Something went wrong. Please try again later or contact support."
MSG_SPOT_AS_ON_DEMAND = "Cannot resume a spot pod as an on demand pod."
MSG_TERMINATE_UNKNOWN = "pod not found to terminate"
MSG_VOLUME_IN_USE = "You must remove this network volume from all pods before deleting it."
MSG_VOLUME_UNKNOWN = "Tried to delete nonexistent network volume"
MSG_DC_UNKNOWN = "Failed to find data center, please try again."
MSG_ACTION_NOT_VALID = "Action not valid for current pod status"
# ASSUMPTIONS (no source has these texts; reference §12 UNCONFIRMED):
MSG_ON_DEMAND_AS_SPOT = "Cannot resume an on demand pod as a spot pod."
MSG_ALREADY_RUNNING = "Cannot resume a pod that is already running."


def msg_bid_too_low(bid: float, minimum: float) -> str:  # ASSUMPTION: rejected, not queued
    return f"Your bid of ${bid:.3f}/hr per GPU is below the minimum bid price of ${minimum:.3f}/hr per GPU."


DC_RE = re.compile(r"^[A-Z]{2,4}-[A-Z]{2,4}-\d+$")  # Secure Cloud ids: EU-RO-1, US-KS-2, EUR-IS-1, CA-MTL-1


class ApiError(Exception):
    """A rule violation, rendered by the API layer that caught it."""

    def __init__(self, status: int, detail: str, *, errors: list[str] | None = None, title: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.title = title or TITLES.get(status, "Error")


TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class GpuPrice:
    """One GPU type of the catalog. Prices are list prices in USD per hour for a single GPU (v2 `price`)."""

    display_name: str
    on_demand: float  # Secure Cloud list price: v2 price.secure (GraphQL securePrice)
    spot: float  # GraphQL secureSpotPrice
    minimum_bid: float  # GraphQL lowestPrice.minimumBidPrice (per GPU)
    stock: str = "High"  # GraphQL stockStatus spelling (High/Medium/Low/None); v2 availability is its upper case
    memory_gb: int = 24
    # Data centers with this GPU in stock (the v2 catalog's dataCenters[]); None = every known one.
    data_centers: list[str] | None = None
    community: float | None = None  # Community Cloud list price (v2 price.community); None: 80% of secure
    pool: str | None = None  # serverless pool id (v2 `pool`)
    serverless: float | None = None  # v2 price.serverless, for the pool
    manufacturer: str = "NVIDIA"
    max_count: int = 8  # the largest machine of this type (v2 maxCount, both clouds)
    cuda_versions: tuple[str, ...] = ("12.4", "12.6", "12.8")  # what its hosts report

    @property
    def community_price(self) -> float:
        return self.community if self.community is not None else round(self.on_demand * 0.8, 3)

    def list_price(self, cloud: str) -> float:
        return self.community_price if cloud == "COMMUNITY" else self.on_demand


@dataclass(frozen=True)
class DataCenterInfo:
    """What GET /v2/catalog/datacenters says of a data center besides its volume types."""

    name: str
    region: str
    country: str  # ISO 3166 alpha-2, for the GPU catalog's countryCodes filter
    compliance: tuple[str, ...] = ("GDPR", "ISO_IEC_27001", "SOC_2_TYPE_2")
    global_network: bool = True


DATA_CENTER_INFO: dict[str, DataCenterInfo] = {
    "EU-RO-1": DataCenterInfo("Europe Romania 1", "EUROPE", "RO"),
    "EUR-IS-1": DataCenterInfo("Europe Iceland 1", "EUROPE", "IS", ("GDPR", "ISO_IEC_27001", "RENEWABLE")),
    "EU-CZ-1": DataCenterInfo("Europe Czechia 1", "EUROPE", "CZ"),
    "EUR-NO-1": DataCenterInfo("Europe Norway 1", "EUROPE", "NO", ("GDPR", "RENEWABLE")),
    "US-KS-2": DataCenterInfo("US Kansas 2", "NORTH_AMERICA", "US", ("SOC_2_TYPE_2",)),
    "US-IL-1": DataCenterInfo("US Illinois 1", "NORTH_AMERICA", "US", ("SOC_2_TYPE_2",)),
    "US-CA-2": DataCenterInfo("US California 2", "NORTH_AMERICA", "US", ("SOC_2_TYPE_2", "HIPAA")),
    "US-GA-2": DataCenterInfo("US Georgia 2", "NORTH_AMERICA", "US", ("SOC_2_TYPE_2",), False),
    "US-TX-3": DataCenterInfo("US Texas 3", "NORTH_AMERICA", "US", ("SOC_2_TYPE_2",)),
    "CA-MTL-1": DataCenterInfo("Canada Montreal 1", "NORTH_AMERICA", "CA", ("SOC_2_TYPE_2",), False),
}


# Secure Cloud data centers the fake knows (v2 GET /v2/catalog/datacenters); all take STANDARD network volumes,
# the first two HIGH_PERFORMANCE too. A data center outside this list does not exist for the fake.
DATA_CENTERS: dict[str, list[str]] = {
    "EU-RO-1": ["STANDARD", "HIGH_PERFORMANCE"],
    "EUR-IS-1": ["STANDARD", "HIGH_PERFORMANCE"],
    "EU-CZ-1": ["STANDARD"],
    "EUR-NO-1": ["STANDARD"],
    "US-KS-2": ["STANDARD"],
    "US-IL-1": ["STANDARD"],
    "US-CA-2": ["STANDARD"],
    "US-GA-2": ["STANDARD"],
    "US-TX-3": [],
    "CA-MTL-1": ["STANDARD"],
}


def default_prices() -> dict[str, GpuPrice]:
    # An RTX 4090 is not in every data center (reference §4.4: refused in US-KS-2/US-IL-1, fine in EU-RO-1).
    no_4090 = {"US-KS-2", "US-IL-1"}
    return {
        "NVIDIA GeForce RTX 4090": GpuPrice(
            "RTX 4090",
            0.69,
            0.35,
            0.20,
            "High",
            24,
            [dc for dc in DATA_CENTERS if dc not in no_4090],
            community=0.49,
            pool="ADA_24",
            serverless=1.1,
        ),
        "NVIDIA GeForce RTX 3090": GpuPrice("RTX 3090", 0.46, 0.22, 0.16, "Medium", 24, pool="AMPERE_24"),
        "NVIDIA RTX A4000": GpuPrice("RTX A4000", 0.25, 0.13, 0.10, "High", 16, pool="AMPERE_16", max_count=4),
        "NVIDIA RTX 4000 Ada Generation": GpuPrice("RTX 4000 Ada", 0.26, 0.14, 0.11, "Low", 20),
        "NVIDIA A100 80GB PCIe": GpuPrice("A100 PCIe", 1.64, 0.82, 0.60, "Low", 80, pool="AMPERE_80"),
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_status_date() -> str:
    # as in "Rented by User: Wed Jul 29 2026 21:51:59 GMT+0000"
    return time.strftime("%a %b %d %Y %H:%M:%S GMT+0000", time.gmtime())


def _rand_id(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


@dataclass
class FakeVolume:
    id: str
    name: str
    size: int
    data_center: str
    type: str = "STANDARD"

    def v2(self) -> dict:
        return {"id": self.id, "name": self.name, "size": self.size, "dataCenter": self.data_center, "type": self.type}

    def gql(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "dataCenterId": self.data_center,
            "storageType": self.type,
            "dataCenter": {"id": self.data_center, "name": self.data_center},
        }


@dataclass(eq=False)
class FakePod:
    id: str
    name: str
    image: str
    gpu_type: str
    gpu_count: int
    data_center: str
    cloud: str
    interruptible: bool
    bid_per_gpu: float | None
    price_per_gpu: float  # what one GPU-hour costs while it runs
    volume_id: str | None = None
    volume_mount_path: str | None = None
    ports: list[str] = field(default_factory=lambda: ["22/tcp"])
    env: dict[str, str] = field(default_factory=dict)
    disk: int = 20
    args: str = ""  # the start command (v2 args / GraphQL dockerArgs); "": the image's
    api_key: str = ""  # pod-scoped RUNPOD_API_KEY
    machine_id: str = ""
    pod_host_id: str = ""
    created_at: str = ""
    phase: str = EXITED
    boot_started: float = 0.0  # monotonic
    boot_seconds: float = 0.0
    started_at: str | None = None
    started_dt: datetime | None = None
    started_mono: float | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None
    last_status_change: str | None = None
    start_count: int = 0
    history: list[str] = field(default_factory=list)
    # What the API reports of its GPUs while it runs (runtime.gpus[]): [(util %, memory %)] per GPU, set by
    # a test (FakeRunPod.set_gpu_use); None: no gpus in runtime. runtime_hidden: the answer has no runtime.
    gpu_use: list[tuple[int, int]] | None = None
    runtime_hidden: bool = False
    # What it was billed: [start, end (None: running), $/h] per stretch it ran, wall-clock seconds (billing.py).
    billing: list[list] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.phase != BOOT:
            return self.phase
        elapsed = time.monotonic() - self.boot_started
        if elapsed >= self.boot_seconds:
            return RUNNING
        return STARTING if elapsed >= self.boot_seconds / 2 else PROVISIONING

    @property
    def actions(self) -> list[str]:
        return list(ACTIONS[self.status])

    @property
    def desired_status(self) -> str:
        return {BOOT: RUNNING, EXITED: EXITED, ERROR: EXITED, TERMINATED: TERMINATED}[self.phase]

    @property
    def rate(self) -> float:
        return round(
            self.gpu_count * (self.bid_per_gpu if self.interruptible and self.bid_per_gpu else self.price_per_gpu), 4
        )

    @property
    def cost_per_hr(self) -> float:
        return self.rate if self.phase == BOOT else 0.0

    @property
    def pod_type(self) -> str:
        return "INTERRUPTABLE" if self.interruptible else "RESERVED"

    @property
    def terminated(self) -> bool:
        return self.phase == TERMINATED

    def _uptime(self) -> int:
        return int(time.monotonic() - self.started_mono) if self.started_mono is not None else 0

    def v2(self) -> dict:
        st = self.status
        running = st == RUNNING
        exposes_ssh = "22/tcp" in self.ports
        direct = None
        runtime = None
        if running:
            runtime = {"uptime": self._uptime(), "ports": []}
            if self.gpu_use is not None:
                runtime["gpus"] = [{"util": u, "memoryUtil": m} for u, m in self.gpu_use]
            if exposes_ssh and self.ssh_port:
                direct = {
                    "host": self.ssh_host,
                    "port": self.ssh_port,
                    "username": "root",
                    "command": f"ssh root@{self.ssh_host} -p {self.ssh_port}",
                }
                runtime["ports"].append({"private": 22, "public": self.ssh_port, "type": "tcp", "ip": self.ssh_host})
            if self.runtime_hidden:
                runtime = None
        return {
            "id": self.id,
            "name": self.name,
            "status": st,
            "actions": list(ACTIONS[st]),
            "image": self.image,
            "args": self.args,
            "disk": self.disk,
            "ports": list(self.ports),
            "env": dict(self.env),
            "registry": None,
            "mounts": (
                {"network": [{"volumeId": self.volume_id, "path": self.volume_mount_path}]} if self.volume_id else {}
            ),
            "gpu": {"id": self.gpu_type, "count": self.gpu_count},
            "cloud": self.cloud,
            "dataCenterId": self.data_center,
            "cudaVersion": "12.8",
            "ssh": {
                "proxy": {
                    "host": "ssh.runpod.io",
                    "port": 22,
                    "username": self.pod_host_id,
                    "command": f"ssh {self.pod_host_id}@ssh.runpod.io",
                },
                "direct": direct,
            },
            "template": None,
            "cost": self.cost_per_hr,
            "locked": False,
            "globalNetworking": {"enabled": False},
            "runtime": runtime,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
        }

    def gql(self) -> dict:
        st = self.status
        runtime = None
        # GraphQL keeps reporting a stale runtime on a stopped pod (reference §3.1): only RUNNING is trustworthy.
        if self.started_mono is not None and (st == RUNNING or self.phase in (EXITED, ERROR)):
            ports = []
            if "22/tcp" in self.ports and self.ssh_port:
                ports.append(
                    {
                        "ip": self.ssh_host,
                        "isIpPublic": True,
                        "privatePort": 22,
                        "publicPort": self.ssh_port,
                        "type": "tcp",
                    }
                )
            runtime = {"uptimeInSeconds": self._uptime(), "ports": ports}
        return {
            "id": self.id,
            "name": self.name,
            "desiredStatus": self.desired_status,
            "lastStatusChange": self.last_status_change,
            "podType": self.pod_type,
            "costPerHr": self.rate,
            "gpuCount": self.gpu_count,
            "imageName": self.image,
            "dockerArgs": self.args,
            "machineId": self.machine_id,
            "networkVolumeId": self.volume_id,
            "ports": ",".join(self.ports),
            "uptimeSeconds": self._uptime() if st == RUNNING else 0,
            "volumeMountPath": self.volume_mount_path,
            "containerDiskInGb": self.disk,
            "dockerId": None,
            "env": [f"{k}={v}" for k, v in self.env.items()],
            "memoryInGb": 62 * self.gpu_count,
            "port": None,
            "vcpuCount": 16 * self.gpu_count,
            "volumeInGb": 0,
            "machine": {"podHostId": self.pod_host_id, "gpuDisplayName": self.gpu_type},
            "runtime": runtime,
        }

    def rp_environment(self) -> dict[str, str]:
        """What RunPod would put in the container env / /etc/rp_environment."""
        env = {
            "RUNPOD_POD_ID": self.id,
            "RUNPOD_API_KEY": self.api_key,
            "RUNPOD_DC_ID": self.data_center,
            "RUNPOD_GPU_COUNT": str(self.gpu_count),
            "RUNPOD_POD_HOSTNAME": self.pod_host_id,
        }
        if self.ssh_host:
            env["RUNPOD_PUBLIC_IP"] = self.ssh_host
        if self.ssh_port:
            env["RUNPOD_TCP_PORT_22"] = str(self.ssh_port)
        if self.volume_id:
            env["RUNPOD_VOLUME_ID"] = self.volume_id
        return env


class FakeState:
    """One RunPod account. All public methods take the lock."""

    def __init__(self, *, boot_seconds: float = 0.2, ssh_host: str = "127.0.0.1", ssh_ports: list[int] | None = None):
        self.lock = threading.RLock()
        self.pods: dict[str, FakePod] = {}
        self.volumes: dict[str, FakeVolume] = {}
        self.prices: dict[str, GpuPrice] = default_prices()
        self.boot_seconds = boot_seconds
        self.ssh_host = ssh_host
        self.ssh_ports: list[int] = list(ssh_ports or [])
        self._port_cursor = 0
        self.pod_targets: dict[str, tuple[str, list[int]]] = {}  # a pod with its own sshd (several pods)
        self.spot_enabled = True
        self.graphql_retired = False  # /graphql answers 410 Gone (RunPod's retirement, "early 2027")
        self.page_size = 100  # REST v2 list pages (cursor pagination); tests make it small
        # What deleting a volume in use answers: RunPod's GraphQL-era text with 400, or a bare 409 (the
        # spec documents neither; the client must read both as VolumeInUse).
        self.volume_in_use_status = 400
        # Whether REST v2 lets a pod stop itself with its pod-scoped key (no public source says; the live
        # check's lifecycle settles it): False answers such a stop 403, as a key without that right would.
        self.pod_key_may_stop = True
        self.data_centers: dict[str, list[str]] = {k: list(v) for k, v in DATA_CENTERS.items()}

    # ---------------------------------------------------------------- helpers
    def set_ssh_target(self, host: str, ports: list[int]) -> None:
        with self.lock:
            self.ssh_host = host
            self.ssh_ports = [int(p) for p in ports]
            self._port_cursor = 0

    def set_pod_ssh_target(self, pod_id: str, host: str, ports: list[int]) -> None:
        """This pod answers on its own sshd (several pods on one volume: one sshd each)."""
        with self.lock:
            self.pod_targets[pod_id] = (host, [int(p) for p in ports])
            pod = self.pods.get(pod_id)
            if pod is not None and pod.ssh_port is not None:
                pod.ssh_host, pod.ssh_port = host, self.pod_targets[pod_id][1][0]

    def _next_ssh_port(self, previous: int | None) -> int:
        if self.ssh_ports:
            port = self.ssh_ports[self._port_cursor % len(self.ssh_ports)]
            self._port_cursor += 1
            return port
        while True:
            port = random.randint(20000, 60000)
            if port != previous:
                return port

    def pod(self, pod_id: str) -> FakePod | None:
        """A live (not terminated) pod."""
        p = self.pods.get(pod_id)
        return p if p is not None and not p.terminated else None

    def live_pods(self) -> list[FakePod]:
        with self.lock:
            return [p for p in self.pods.values() if not p.terminated]

    def price(self, gpu_type: str) -> GpuPrice | None:
        return self.prices.get(gpu_type)

    def stocked_in(self, price: GpuPrice) -> list[str]:
        """The data centers with this GPU in stock (none when its stock is "None")."""
        if price.stock == "None":
            return []
        dcs = price.data_centers if price.data_centers is not None else list(self.data_centers)
        return [dc for dc in dcs if dc in self.data_centers]

    # ---------------------------------------------------------------- pod lifecycle
    @staticmethod
    def _bill_end(pod: FakePod) -> None:
        """The stretch the pod ran (and was billed) ends now."""
        if pod.billing and pod.billing[-1][1] is None:
            pod.billing[-1][1] = time.time()

    def _boot(self, pod: FakePod, reason: str) -> None:
        self._bill_end(pod)
        pod.phase = BOOT
        pod.boot_started = time.monotonic()
        pod.boot_seconds = self.boot_seconds
        pod.start_count += 1
        started = datetime.now(timezone.utc)
        if pod.started_dt is not None and started <= pod.started_dt:  # startedAt changes on every start
            started = pod.started_dt + timedelta(microseconds=1)
        pod.started_dt = started
        pod.started_at = started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        pod.started_mono = time.monotonic()
        own = self.pod_targets.get(pod.id)
        if own is not None:  # the next of its own ports, as RunPod hands out a new port on every start
            ports = own[1]
            pod.ssh_host = own[0]
            pod.ssh_port = ports[(ports.index(pod.ssh_port) + 1) % len(ports)] if pod.ssh_port in ports else ports[0]
        else:
            pod.ssh_host = self.ssh_host
            pod.ssh_port = self._next_ssh_port(pod.ssh_port)
        pod.last_status_change = f"{reason}: {now_status_date()}"
        pod.history.append(pod.last_status_change)
        pod.billing.append([time.time(), None, pod.rate])

    def create_pod(
        self,
        *,
        api: str,
        name: str,
        image: str,
        gpu_type: str,
        gpu_count: int,
        cloud: str,
        data_centers: list[str],
        volume_id: str | None,
        mount_path: str | None,
        ports: list[str],
        env: dict[str, str],
        disk: int,
        interruptible: bool,
        bid_per_gpu: float | None,
        args: str = "",
    ) -> FakePod:
        """Rules shared by REST v2 create and GraphQL podRentInterruptable. api: 'rest' | 'graphql'."""
        rest = api == "rest"
        for dc in data_centers:
            if not DC_RE.match(dc) or dc not in self.data_centers:
                raise ApiError(400, f"data center '{dc}' does not exist" if rest else MSG_DC_UNKNOWN)
        volume = None
        if volume_id:
            volume = self.volumes.get(volume_id)
            if volume is None:
                raise ApiError(400, f"network volume '{volume_id}' not found" if rest else MSG_SOMETHING_WRONG)
            if cloud != "SECURE":
                raise ApiError(
                    400,
                    "network volumes are only available for Pods in the Secure Cloud" if rest else MSG_SOMETHING_WRONG,
                )
            if data_centers and volume.data_center not in data_centers:
                raise ApiError(
                    400,
                    (
                        f"network volume '{volume_id}' is in {volume.data_center}; the pod must be placed "
                        f"in the same data center"
                    )
                    if rest
                    else MSG_SOMETHING_WRONG,
                )
        price = self.price(gpu_type)
        if price is None or gpu_count < 1 or gpu_count > 8:
            raise ApiError(400, MSG_NO_CAPACITY)
        wanted = [volume.data_center] if volume else data_centers
        stocked = self.stocked_in(price)
        if wanted and not any(dc in stocked for dc in wanted):
            raise ApiError(400, MSG_NO_CAPACITY)  # dataCenterIds is enforced (reference §4.4)
        if interruptible:
            if bid_per_gpu is None or bid_per_gpu < price.minimum_bid:
                raise ApiError(400, msg_bid_too_low(bid_per_gpu or 0.0, price.minimum_bid))
        dc = (
            volume.data_center
            if volume
            else next((d for d in data_centers if d in stocked), stocked[0] if stocked else "EU-RO-1")
        )
        pod_id = _rand_id(14)
        pod = FakePod(
            id=pod_id,
            name=name,
            image=image,
            gpu_type=gpu_type,
            gpu_count=gpu_count,
            data_center=dc,
            cloud=cloud if cloud in ("SECURE", "COMMUNITY") else "SECURE",
            interruptible=interruptible,
            bid_per_gpu=bid_per_gpu if interruptible else None,
            price_per_gpu=price.on_demand,
            volume_id=volume_id,
            volume_mount_path=(mount_path or "/workspace") if volume_id else None,
            ports=list(ports),
            env=dict(env),
            disk=disk,
            args=args,
            api_key="pod-" + secrets.token_hex(12),
            machine_id=_rand_id(12),
            pod_host_id=f"{pod_id}-{secrets.token_hex(4)}",
            created_at=now_iso(),
        )
        self.pods[pod_id] = pod
        self._boot(pod, "Rented by User")
        return pod

    def start(self, pod: FakePod, *, api: str, spot_bid: float | None = None, gpu_count: int | None = None) -> FakePod:
        """v2 action start, podResume (spot_bid None) or podBidResume (spot_bid set)."""
        st = pod.status
        if api == "rest":
            if "start" not in ACTIONS[st]:
                raise ApiError(
                    409,
                    MSG_ACTION_NOT_VALID,
                    errors=[f"pod status is {st}; allowed actions: {', '.join(ACTIONS[st]) or 'none'}"],
                )
            if pod.interruptible:
                raise ApiError(409, MSG_SPOT_AS_ON_DEMAND)  # ASSUMPTION: v2 start refuses spot pods like podResume
        else:
            if spot_bid is None and pod.interruptible:
                raise ApiError(400, MSG_SPOT_AS_ON_DEMAND)
            if spot_bid is not None and not pod.interruptible:
                raise ApiError(400, MSG_ON_DEMAND_AS_SPOT)
            if st not in (EXITED, ERROR):
                raise ApiError(400, MSG_ALREADY_RUNNING)
            if spot_bid is not None:
                minimum = self.prices[pod.gpu_type].minimum_bid if pod.gpu_type in self.prices else 0.0
                if spot_bid < minimum:
                    raise ApiError(400, msg_bid_too_low(spot_bid, minimum))
                pod.bid_per_gpu = spot_bid
            if gpu_count is not None and gpu_count != pod.gpu_count:
                if gpu_count < 1:
                    raise ApiError(400, MSG_NOT_ENOUGH_GPUS)
                pod.gpu_count = gpu_count
        self._boot(pod, "Rented by User")
        return pod

    def stop(self, pod: FakePod, *, api: str, reason: str = "Exited by user") -> FakePod:
        st = pod.status
        if api == "rest" and "stop" not in ACTIONS[st]:
            raise ApiError(
                409,
                MSG_ACTION_NOT_VALID,
                errors=[f"pod status is {st}; allowed actions: {', '.join(ACTIONS[st]) or 'none'}"],
            )
        if pod.phase == BOOT:
            self._bill_end(pod)
            pod.phase = EXITED
            pod.last_status_change = f"{reason}: {now_status_date()}"
            pod.history.append(pod.last_status_change)
        return pod

    def restart(self, pod: FakePod) -> FakePod:
        st = pod.status
        if "restart" not in ACTIONS[st]:
            raise ApiError(
                409,
                MSG_ACTION_NOT_VALID,
                errors=[f"pod status is {st}; allowed actions: {', '.join(ACTIONS[st]) or 'none'}"],
            )
        port = pod.ssh_port
        self._boot(pod, "Rented by User")
        pod.ssh_port = port  # a container restart in place keeps the machine's port mapping
        return pod

    def terminate(self, pod: FakePod, *, reason: str = "Terminated by user") -> None:
        self._bill_end(pod)
        pod.phase = TERMINATED
        pod.last_status_change = f"{reason}: {now_status_date()}"
        pod.history.append(pod.last_status_change)

    def preempt(self, pod_id: str, *, terminate: bool = False) -> FakePod:
        with self.lock:
            pod = self.pod(pod_id)
            if pod is None:
                raise KeyError(f"no live pod {pod_id!r}")
            if not pod.interruptible:
                raise ValueError(f"pod {pod_id} is on-demand; only spot pods are outbid")
            text = f"Outbid: {now_status_date()}"
            self._bill_end(pod)
            pod.phase = TERMINATED if terminate else EXITED
            pod.last_status_change = text
            pod.history.append(text)
            return pod

    def platform_stop(self, pod_id: str, *, reason: str = "Exited by RunPod", error: bool = False) -> FakePod:
        """The platform stopped the pod (credit, host action) or it failed (error=True -> ERROR)."""
        with self.lock:
            pod = self.pod(pod_id)
            if pod is None:
                raise KeyError(f"no live pod {pod_id!r}")
            self._bill_end(pod)
            pod.phase = ERROR if error else EXITED
            pod.last_status_change = f"{reason}: {now_status_date()}"
            pod.history.append(pod.last_status_change)
            return pod

    # ---------------------------------------------------------------- volumes
    def create_volume(self, *, api: str, name: str, size: int, data_center: str, type_: str = "STANDARD") -> FakeVolume:
        if not DC_RE.match(data_center or "") or type_ not in self.data_centers.get(data_center, []):
            # v2 names the data centers that take this volume type (reference §2, [S10]).
            supported = ", ".join(dc for dc, types in self.data_centers.items() if type_ in types)
            raise ApiError(
                400,
                (
                    f"data center '{data_center}' does not support {type_} network volumes; "
                    f"supported data centers: {supported}"
                )
                if api == "rest"
                else MSG_DC_UNKNOWN,
            )
        if not 10 <= size <= 4096:
            raise ApiError(
                422 if api == "rest" else 400,
                "Request validation failed."
                if api == "rest"
                else "Network volume size must be between 10 and 4096 GB.",
                errors=[f"$.size: must be between 10 and 4096, got {size}"],
            )
        vol = FakeVolume(id=_rand_id(8), name=name, size=size, data_center=data_center, type=type_)
        self.volumes[vol.id] = vol
        return vol

    def update_volume(self, vol: FakeVolume, *, name: str | None, size: int | None) -> FakeVolume:
        if size is not None and size < vol.size:
            raise ApiError(400, f"network volume size may only increase (current {vol.size} GB, requested {size} GB)")
        if name is not None:
            vol.name = name
        if size is not None:
            vol.size = size
        return vol

    def delete_volume(self, vol: FakeVolume) -> None:
        users = [p.id for p in self.pods.values() if p.volume_id == vol.id and not p.terminated]
        if users:
            if self.volume_in_use_status == 409:
                raise ApiError(409, "network volume is in use", errors=[f"used by pod {pid}" for pid in users])
            raise ApiError(400, MSG_VOLUME_IN_USE, errors=[f"used by pod {pid}" for pid in users])
        del self.volumes[vol.id]

    # ---------------------------------------------------------------- seeding (tests)
    def add_volume(
        self,
        *,
        name: str = "vol",
        size: int = 50,
        data_center: str = "EU-RO-1",
        id: str | None = None,
        type: str = "STANDARD",
    ) -> FakeVolume:
        with self.lock:
            vol = FakeVolume(id=id or _rand_id(8), name=name, size=size, data_center=data_center, type=type)
            self.volumes[vol.id] = vol
            return vol

    def add_pod(
        self,
        *,
        name: str = "pod",
        status: str = RUNNING,
        interruptible: bool = True,
        bid_per_gpu: float | None = 0.3,
        gpu_type: str = "NVIDIA GeForce RTX 4090",
        gpu_count: int = 1,
        data_center: str | None = None,
        volume_id: str | None = None,
        mount_path: str = "/workspace",
        image: str = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        ports: list[str] | None = None,
        env: dict[str, str] | None = None,
        cloud: str = "SECURE",
        last_status_change: str | None = None,
        id: str | None = None,
        args: str = "",
    ) -> FakePod:
        """Seed a pod in a given status, bypassing create rules (RUNNING is immediately RUNNING)."""
        with self.lock:
            vol = self.volumes.get(volume_id) if volume_id else None
            price = self.prices.get(gpu_type)
            pod_id = id or _rand_id(14)
            pod = FakePod(
                id=pod_id,
                name=name,
                image=image,
                gpu_type=gpu_type,
                gpu_count=gpu_count,
                data_center=data_center or (vol.data_center if vol else "EU-RO-1"),
                cloud=cloud,
                interruptible=interruptible,
                bid_per_gpu=bid_per_gpu if interruptible else None,
                price_per_gpu=price.on_demand if price else 0.5,
                volume_id=volume_id,
                volume_mount_path=mount_path if volume_id else None,
                ports=list(ports or ["22/tcp"]),
                env=dict(env or {}),
                args=args,
                api_key="pod-" + secrets.token_hex(12),
                machine_id=_rand_id(12),
                pod_host_id=f"{pod_id}-{secrets.token_hex(4)}",
                created_at=now_iso(),
            )
            self.pods[pod_id] = pod
            self._boot(pod, "Rented by User")
            if status in (RUNNING, PROVISIONING, STARTING):
                if status == RUNNING:
                    pod.boot_seconds = 0.0
            elif status in (EXITED, ERROR, TERMINATED):
                pod.billing.clear()  # seeded stopped: it never ran
                pod.phase = status
                if status == TERMINATED:
                    pod.last_status_change = f"Terminated by user: {now_status_date()}"
                else:
                    pod.last_status_change = f"Exited by user: {now_status_date()}"
            else:
                raise ValueError(f"unknown status {status!r}")
            if last_status_change is not None:
                pod.last_status_change = last_status_change
            return pod
