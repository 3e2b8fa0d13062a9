"""REST v2 routes of the fake: /v2/pods, /v2/network-volumes, the catalogs and pod billing; strict bodies,
problem+json errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import billing, catalog
from .state import ApiError, FakeState

POD_CREATE_FIELDS = {
    "name",
    "image",
    "args",
    "disk",
    "env",
    "ports",
    "registry",
    "cloud",
    "cpu",
    "dataCenterIds",
    "globalNetworking",
    "gpu",
    "mounts",
    "startJupyter",
    "startSsh",
    "templateId",
}
# minRamPerGpu / minVcpuCountPerGpu: sent by the official SDK 2.0.0rc2 and SkyPilot (reference addendum).
GPU_FIELDS = {"id", "count", "allowedCudaVersions", "minCudaVersion", "minRamPerGpu", "minVcpuCountPerGpu"}
MOUNTS_FIELDS = {"persistent", "network"}
NETWORK_MOUNT_FIELDS = {"volumeId", "path"}
VOLUME_CREATE_FIELDS = {"name", "size", "dataCenter", "type"}
VOLUME_UPDATE_FIELDS = {"name", "size"}
PORT_RE = re.compile(r"^\d{1,5}/(tcp|http|udp)$")


@dataclass
class Auth:
    kind: str  # "account" | "pod"
    pod_id: str | None = None


@dataclass
class Route:
    name: str  # operation label for the request log, e.g. "rest:POST /v2/pods"
    handler: Any
    params: dict


_ROUTES = [
    ("GET", re.compile(r"^/v2/pods$"), "list_pods"),
    ("POST", re.compile(r"^/v2/pods$"), "create_pod"),
    ("GET", re.compile(r"^/v2/pods/(?P<id>[^/]+)$"), "get_pod"),
    ("DELETE", re.compile(r"^/v2/pods/(?P<id>[^/]+)$"), "delete_pod"),
    ("POST", re.compile(r"^/v2/pods/(?P<id>[^/]+)/action$"), "pod_action"),
    ("GET", re.compile(r"^/v2/network-volumes$"), "list_volumes"),
    ("GET", re.compile(r"^/v2/catalog/gpus$"), "catalog_gpus"),
    ("GET", re.compile(r"^/v2/catalog/gpus/(?P<id>[^/]+)$"), "catalog_gpu"),
    ("GET", re.compile(r"^/v2/catalog/datacenters$"), "catalog_datacenters"),
    ("GET", re.compile(r"^/v2/billing/pods$"), "billing_pods"),
    ("POST", re.compile(r"^/v2/network-volumes$"), "create_volume"),
    ("GET", re.compile(r"^/v2/network-volumes/(?P<id>[^/]+)$"), "get_volume"),
    ("PATCH", re.compile(r"^/v2/network-volumes/(?P<id>[^/]+)$"), "update_volume"),
    ("DELETE", re.compile(r"^/v2/network-volumes/(?P<id>[^/]+)$"), "delete_volume"),
]


def route(method: str, path: str) -> tuple[str, dict] | None:
    """(handler name, params), or raises ApiError 404/405."""
    allowed = []
    for m, rx, name in _ROUTES:
        match = rx.match(path)
        if match:
            if m == method:
                return name, match.groupdict()
            allowed.append(m)
    if allowed:
        raise ApiError(405, f"method {method} not allowed on {path}")
    raise ApiError(404, f"no route for {method} {path}")


def _unprocessable(errors: list[str]) -> ApiError:
    return ApiError(422, "Request validation failed.", errors=errors)


def _strict(obj: Any, allowed: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise _unprocessable([f"{where}: expected object"])
    extra = sorted(set(obj) - allowed)
    if extra:
        raise _unprocessable([f"{where}: additional properties {', '.join(repr(e) for e in extra)} not allowed"])


def _typed(obj: dict, key: str, typ: type | tuple, where: str = "$", *, required: bool = False) -> Any:
    if key not in obj:
        if required:
            raise _unprocessable([f"{where}: missing property '{key}'"])
        return None
    v = obj[key]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        name = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise _unprocessable([f"{where}.{key}: expected {name}, got {type(v).__name__}"])
    return v


class RestApi:
    def __init__(self, state: FakeState):
        self.s = state

    def check_pod_key_scope(self, auth: Auth, handler: str, params: dict, body: Any) -> None:
        if auth.kind != "pod":
            return
        own = params.get("id") == auth.pod_id
        stop = handler == "pod_action" and isinstance(body, dict) and body.get("action") == "stop"
        if own and (handler == "get_pod" or (stop and self.s.pod_key_may_stop)):
            return
        raise ApiError(403, "access denied", errors=["a pod-scoped key may only read and stop its own pod"])

    def dispatch(self, handler: str, params: dict, body: Any, query: dict[str, str] | None = None) -> tuple[int, Any]:
        self._query = query or {}
        return getattr(self, handler)(body=body, **params)

    # ---------------------------------------------------------------- cursor pagination
    def _page(self, collection: str, items: list[dict]) -> tuple[int, Any]:
        """One page of a list: {collection: [...], "pagination": {hasNextPage, nextCursor}} (SDK 2.0.0rc2 rest.py).

        The cursor is opaque to clients; here it is the id after which the page starts (ids are stable)."""
        unknown = sorted(set(self._query) - {"cursor"})
        if unknown:
            raise ApiError(400, f"unknown query parameter '{unknown[0]}'")
        start = 0
        cursor = self._query.get("cursor")
        if cursor is not None:
            ids = [it["id"] for it in items]
            if not cursor.startswith("c_") or cursor[2:] not in ids:
                raise ApiError(400, "invalid cursor")
            start = ids.index(cursor[2:]) + 1
        size = max(1, int(self.s.page_size))
        page = items[start : start + size]
        more = start + size < len(items)
        return 200, {
            collection: page,
            "pagination": {"hasNextPage": more, "nextCursor": f"c_{page[-1]['id']}" if more else None},
        }

    # ---------------------------------------------------------------- pods
    def _pod(self, id: str):
        pod = self.s.pod(id)
        if pod is None:
            raise ApiError(404, "pod not found")
        return pod

    def list_pods(self, body: Any) -> tuple[int, Any]:
        return self._page("pods", [p.v2() for p in self.s.pods.values() if not p.terminated])

    def get_pod(self, body: Any, id: str) -> tuple[int, Any]:
        return 200, self._pod(id).v2()

    def create_pod(self, body: Any) -> tuple[int, Any]:
        _strict(body, POD_CREATE_FIELDS, "$")
        name = _typed(body, "name", str, required=True)
        if not name:
            raise _unprocessable(["$.name: must be at least 1 character"])
        if "templateId" in body:
            raise ApiError(400, "templates are not simulated by the fake RunPod API")
        image = _typed(body, "image", str, required=True)
        if ("gpu" in body) == ("cpu" in body):
            raise ApiError(400, "exactly one of 'gpu' or 'cpu' must be set")
        if "cpu" in body:
            raise ApiError(400, "CPU pods are not simulated by the fake RunPod API")
        gpu = body["gpu"]
        _strict(gpu, GPU_FIELDS, "$.gpu")
        gpu_id = _typed(gpu, "id", str, "$.gpu", required=True)
        count = _typed(gpu, "count", int, "$.gpu")
        count = 1 if count is None else count
        if count < 1:
            raise _unprocessable(["$.gpu.count: must be >= 1"])
        for key in ("minRamPerGpu", "minVcpuCountPerGpu"):
            v = _typed(gpu, key, int, "$.gpu")
            if v is not None and v < 1:
                raise _unprocessable([f"$.gpu.{key}: must be >= 1"])
        cloud = _typed(body, "cloud", str) or "SECURE"
        if cloud not in ("SECURE", "COMMUNITY"):
            raise _unprocessable(["$.cloud: value must be one of 'SECURE', 'COMMUNITY'"])
        dcs = _typed(body, "dataCenterIds", list) or []
        if not all(isinstance(d, str) for d in dcs):
            raise _unprocessable(["$.dataCenterIds: expected array of strings"])
        disk = _typed(body, "disk", int)
        ports = _typed(body, "ports", list) or []
        for i, p in enumerate(ports):
            if not isinstance(p, str) or not PORT_RE.match(p):
                raise _unprocessable([f"$.ports[{i}]: must look like '22/tcp' or '8888/http'"])
        args = _typed(body, "args", str) or ""
        env = _typed(body, "env", dict) or {}
        for k, v in env.items():
            if not isinstance(v, str):
                raise _unprocessable([f"$.env.{k}: expected string"])
        volume_id = mount_path = None
        if "mounts" in body:
            mounts = body["mounts"]
            _strict(mounts, MOUNTS_FIELDS, "$.mounts")
            if "persistent" in mounts and "network" in mounts:
                raise ApiError(400, "mounts.persistent and mounts.network are mutually exclusive")
            if "network" in mounts:
                net = mounts["network"]
                if not isinstance(net, list) or len(net) != 1:
                    raise _unprocessable(["$.mounts.network: expected exactly one item"])
                _strict(net[0], NETWORK_MOUNT_FIELDS, "$.mounts.network[0]")
                volume_id = _typed(net[0], "volumeId", str, "$.mounts.network[0]", required=True)
                mount_path = _typed(net[0], "path", str, "$.mounts.network[0]", required=True)
        pod = self.s.create_pod(
            api="rest",
            name=name,
            image=image,
            gpu_type=gpu_id,
            gpu_count=count,
            cloud=cloud,
            data_centers=dcs,
            volume_id=volume_id,
            mount_path=mount_path,
            ports=ports,
            env=env,
            disk=disk or 20,
            interruptible=False,
            bid_per_gpu=None,
            args=args,
        )
        return 201, pod.v2()

    def delete_pod(self, body: Any, id: str) -> tuple[int, Any]:
        self.s.terminate(self._pod(id))
        return 204, None

    def pod_action(self, body: Any, id: str) -> tuple[int, Any]:
        _strict(body, {"action"}, "$")
        action = _typed(body, "action", str, required=True)
        if action not in ("start", "stop", "restart", "terminate"):
            raise _unprocessable(["$.action: value must be one of 'start', 'stop', 'restart', 'terminate'"])
        pod = self._pod(id)
        if action == "terminate":
            self.s.terminate(pod)
            return 204, None
        if action == "start":
            self.s.start(pod, api="rest")
        elif action == "stop":
            self.s.stop(pod, api="rest")
        else:
            self.s.restart(pod)
        return 200, pod.v2()

    # ---------------------------------------------------------------- network volumes
    def _volume(self, id: str):
        vol = self.s.volumes.get(id)
        if vol is None:
            raise ApiError(404, "network volume not found")
        return vol

    def list_volumes(self, body: Any) -> tuple[int, Any]:
        return self._page("networkVolumes", [v.v2() for v in self.s.volumes.values()])

    def get_volume(self, body: Any, id: str) -> tuple[int, Any]:
        return 200, self._volume(id).v2()

    def create_volume(self, body: Any) -> tuple[int, Any]:
        _strict(body, VOLUME_CREATE_FIELDS, "$")
        name = _typed(body, "name", str, required=True)
        size = _typed(body, "size", int, required=True)
        dc = _typed(body, "dataCenter", str, required=True)
        typ = _typed(body, "type", str) or "STANDARD"
        if typ not in ("STANDARD", "HIGH_PERFORMANCE"):
            raise _unprocessable(["$.type: value must be one of 'STANDARD', 'HIGH_PERFORMANCE'"])
        if not name:
            raise _unprocessable(["$.name: must be at least 1 character"])
        if not 10 <= size <= 4096:
            raise _unprocessable(["$.size: must be between 10 and 4096"])
        return 201, self.s.create_volume(api="rest", name=name, size=size, data_center=dc, type_=typ).v2()

    def update_volume(self, body: Any, id: str) -> tuple[int, Any]:
        _strict(body, VOLUME_UPDATE_FIELDS, "$")
        if not body:
            raise _unprocessable(["$: at least one property is required"])
        name = _typed(body, "name", str)
        size = _typed(body, "size", int)
        if name is not None and not name:
            raise _unprocessable(["$.name: must be at least 1 character"])
        if size is not None and not 10 <= size <= 4096:
            raise _unprocessable(["$.size: must be between 10 and 4096"])
        return 200, self.s.update_volume(self._volume(id), name=name, size=size).v2()

    def delete_volume(self, body: Any, id: str) -> tuple[int, Any]:
        self.s.delete_volume(self._volume(id))
        return 204, None

    # ---------------------------------------------------------------- catalogs (catalog.py)
    def catalog_gpus(self, body: Any) -> tuple[int, Any]:
        return 200, catalog.list_gpus(self.s, self._query)

    def catalog_gpu(self, body: Any, id: str) -> tuple[int, Any]:
        return 200, catalog.get_gpu(self.s, id, self._query)

    def catalog_datacenters(self, body: Any) -> tuple[int, Any]:
        return 200, catalog.list_data_centers(self.s, self._query)

    # ---------------------------------------------------------------- billing (billing.py)
    def billing_pods(self, body: Any) -> tuple[int, Any]:
        return 200, billing.pod_billing(list(self.s.pods.values()), self._query)
