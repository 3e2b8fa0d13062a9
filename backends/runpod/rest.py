"""RunPod's REST v2 calls: read/list pods, on-demand create, start/stop, terminate, network volumes.

A mixin of RunPodClient (backends/runpod/client.py), which supplies the transport (`_rest`, with its
retries and ambiguous-failure handling) and the GraphQL calls (`add_history` for get_pod's history).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from backends.runpod.errors import InvalidAction, NotFound, RunPodError, VolumeInUse
from backends.runpod.models import (
    BOOTING_STATES,
    EXITED,
    CatalogPrice,
    NetworkVolume,
    Pod,
    PodBilling,
    PodSpec,
    _billing_from_v2,
    _catalog_price_from_v2,
    _pod_from_v2,
    _require_id,
    _validate_size,
    _validate_spec,
    _volume_from_v2,
)

_MAX_PAGES = 1000  # a runaway guard: 1000 pages is far beyond any account this tool manages


class RestCalls:
    """The REST v2 half of RunPodClient (pods and network volumes)."""

    if TYPE_CHECKING:
        # Supplied by RunPodClient (the transport) and GraphQLCalls; declared for the type checker only.
        def _rest(
            self,
            method: str,
            path: str,
            payload: Any = None,
            *,
            operation: str,
            on_ambiguous: Callable[[], Any] | None = None,
            on_conflict: type[RunPodError] = InvalidAction,
        ) -> Any: ...

        def add_history(self, pod: Pod) -> Pod: ...

    # ------------------------------------------------------------ lists (cursor pages)
    def _list_all(self, path: str, collection: str, *, operation: str) -> list[dict]:
        """Every item of a REST v2 list, following `pagination.nextCursor` with `?cursor=` until
        `hasNextPage` is false (as the official SDK 2.x does; a repeated cursor is an error there too).
        An answer without `pagination` is one complete page."""
        items: list[dict] = []
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            target = path + ("?" + urlencode({"cursor": cursor}) if cursor else "")
            data = self._rest("GET", target, operation=operation) or {}
            page = data.get(collection) if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise RunPodError(f"unexpected {collection} list from RunPod REST v2", operation=operation)
            items.extend(x for x in page if isinstance(x, dict))
            pagination = data.get("pagination")
            if not isinstance(pagination, dict) or not pagination.get("hasNextPage"):
                return items
            nxt = pagination.get("nextCursor")
            if not isinstance(nxt, str) or not nxt or nxt in seen:
                raise RunPodError(
                    f"RunPod's {collection} pages gave no new cursor after {len(items)} items", operation=operation
                )
            seen.add(nxt)
            cursor = nxt
        raise RunPodError(f"RunPod's {collection} list did not end after {_MAX_PAGES} pages", operation=operation)

    # ------------------------------------------------------------ pods
    def get_pod(self, pod_id: str, *, with_history: bool = False) -> Pod:
        """REST v2 GET /v2/pods/{id}; with_history adds GraphQL lastStatusChange/podType. Raises NotFound."""
        _require_id(pod_id, "pod id")
        data = self._rest("GET", f"/v2/pods/{quote(pod_id, safe='')}", operation="get pod")
        pod = _pod_from_v2(data)
        if with_history:
            pod = self.add_history(pod)
        return pod

    def find_pod(self, pod_id: str, *, with_history: bool = False) -> Pod | None:
        """Like get_pod, None when the pod is gone."""
        try:
            return self.get_pod(pod_id, with_history=with_history)
        except NotFound:
            return None

    def list_pods(self, *, name: str | None = None) -> list[Pod]:
        """REST v2 GET /v2/pods (terminated pods are not listed); optionally only those named `name`."""
        pods = [_pod_from_v2(p) for p in self._list_all("/v2/pods", "pods", operation="list pods")]
        return [p for p in pods if name is None or p.name == name]

    def _new_pod_named(self, name: str, before: set[str]) -> Pod | None:
        fresh = [p for p in self.list_pods(name=name) if p.id not in before]
        if not fresh:
            return None
        return max(fresh, key=lambda p: p.created_at or "")

    def create_on_demand_pod(self, spec: PodSpec) -> Pod:
        """REST v2 POST /v2/pods. Ambiguous failures are resolved like create_spot_pod."""
        _validate_spec(spec)
        if spec.cloud_type not in ("SECURE", "COMMUNITY"):
            raise ValueError(f"cloud_type must be SECURE or COMMUNITY for an on-demand pod, got {spec.cloud_type!r}")
        body: dict[str, Any] = {
            "name": spec.name,
            "image": spec.image,
            "cloud": spec.cloud_type,
            "gpu": {"id": spec.gpu_type, "count": spec.gpu_count},
            "dataCenterIds": [spec.data_center],
            "disk": spec.container_disk_gb,
            "ports": list(spec.ports),
            "env": dict(spec.env),
            "startSsh": True,
        }
        if spec.start_command:
            body["args"] = spec.start_command
        if spec.volume_id:
            body["mounts"] = {"network": [{"volumeId": spec.volume_id, "path": spec.volume_mount_path}]}
        before = {p.id for p in self.list_pods(name=spec.name)}
        result = self._rest(
            "POST",
            "/v2/pods",
            body,
            operation="create on-demand pod",
            on_ambiguous=lambda: self._new_pod_named(spec.name, before),
        )
        pod = result if isinstance(result, Pod) else _pod_from_v2(result)
        return dataclasses.replace(pod, interruptible=False)

    def _booting(self, pod_id: str) -> Pod | None:
        pod = self.find_pod(pod_id)
        return pod if pod is not None and pod.status in BOOTING_STATES else None

    def _action(self, pod_id: str, action: str, *, on_ambiguous: Callable[[], Any]) -> Any:
        _require_id(pod_id, "pod id")
        return self._rest(
            "POST",
            f"/v2/pods/{quote(pod_id, safe='')}/action",
            {"action": action},
            operation=f"{action} pod",
            on_ambiguous=on_ambiguous,
        )

    def start_pod(self, pod_id: str) -> Pod:
        """REST v2 POST /v2/pods/{id}/action {"action": "start"} (on-demand pods)."""
        result = self._action(pod_id, "start", on_ambiguous=lambda: self._booting(pod_id))
        return result if isinstance(result, Pod) else _pod_from_v2(result)

    def stop_pod(self, pod_id: str) -> Pod:
        """REST v2 POST /v2/pods/{id}/action {"action": "stop"}.

        Idempotent: stopping an already stopped (EXITED) pod returns it instead of raising the 409.
        """

        def stopped() -> Pod | None:
            pod = self.find_pod(pod_id)
            return pod if pod is not None and pod.status == EXITED else None

        try:
            result = self._action(pod_id, "stop", on_ambiguous=stopped)
        except InvalidAction:
            pod = stopped()
            if pod is None:
                raise
            return pod
        return result if isinstance(result, Pod) else _pod_from_v2(result)

    def terminate_pod(self, pod_id: str) -> None:
        """REST v2 DELETE /v2/pods/{id}. Raises NotFound when already gone."""
        _require_id(pod_id, "pod id")
        self._rest(
            "DELETE",
            f"/v2/pods/{quote(pod_id, safe='')}",
            operation="terminate pod",
            on_ambiguous=lambda: True if self.find_pod(pod_id) is None else None,
        )

    # ------------------------------------------------------------ network volumes
    def create_network_volume(self, name: str, size_gb: int, data_center: str) -> NetworkVolume:
        """REST v2 POST /v2/network-volumes (field `dataCenter`). Secure Cloud data centers only."""
        if not name or not name.strip():
            raise ValueError("a network volume needs a name")
        _validate_size(size_gb)
        if not data_center:
            raise ValueError("a network volume needs a data center (a Secure Cloud id such as EU-RO-1)")
        before = {v.id for v in self.list_network_volumes() if v.name == name}

        def created() -> NetworkVolume | None:
            fresh = [v for v in self.list_network_volumes() if v.name == name and v.id not in before]
            return fresh[0] if fresh else None

        result = self._rest(
            "POST",
            "/v2/network-volumes",
            {"name": name, "size": size_gb, "dataCenter": data_center},
            operation="create network volume",
            on_ambiguous=created,
        )
        return result if isinstance(result, NetworkVolume) else _volume_from_v2(result)

    def get_network_volume(self, volume_id: str) -> NetworkVolume:
        _require_id(volume_id, "volume id")
        return _volume_from_v2(
            self._rest("GET", f"/v2/network-volumes/{quote(volume_id, safe='')}", operation="get network volume")
        )

    def find_network_volume(self, volume_id: str) -> NetworkVolume | None:
        try:
            return self.get_network_volume(volume_id)
        except NotFound:
            return None

    def list_network_volumes(self) -> list[NetworkVolume]:
        return [
            _volume_from_v2(v)
            for v in self._list_all("/v2/network-volumes", "networkVolumes", operation="list network volumes")
        ]

    def update_network_volume(
        self, volume_id: str, *, name: str | None = None, size_gb: int | None = None
    ) -> NetworkVolume:
        """REST v2 PATCH /v2/network-volumes/{id} {name?, size?}; size may only grow (400 otherwise)."""
        _require_id(volume_id, "volume id")
        body: dict[str, Any] = {}
        if name is not None:
            if not name.strip():
                raise ValueError("a network volume name cannot be empty")
            body["name"] = name
        if size_gb is not None:
            _validate_size(size_gb)
            body["size"] = size_gb
        if not body:
            raise ValueError("update_network_volume needs name and/or size_gb")
        return _volume_from_v2(
            self._rest(
                "PATCH", f"/v2/network-volumes/{quote(volume_id, safe='')}", body, operation="update network volume"
            )
        )

    def delete_network_volume(self, volume_id: str) -> None:
        """Raises VolumeInUse while a pod uses it, NotFound when already gone."""
        _require_id(volume_id, "volume id")
        self._rest(
            "DELETE",
            f"/v2/network-volumes/{quote(volume_id, safe='')}",
            operation="delete network volume",
            on_conflict=VolumeInUse,
            on_ambiguous=lambda: True if self.find_network_volume(volume_id) is None else None,
        )

    # ------------------------------------------------------------ the GPU catalog
    def on_demand_price(
        self, gpu_type: str, gpu_count: int, data_center: str | None, cloud: str = "SECURE"
    ) -> CatalogPrice:
        """REST v2 `GET /v2/catalog/gpus/{id}?include=AVAILABILITY&product=POD&count=N&cloud=CLOUD`: the list
        price per GPU-hour in `cloud` (`price.secure` or `price.community`) and the stock in `data_center`.
        NotFound for an unknown GPU type; RunPodError naming the field when the price is absent."""
        if not (isinstance(gpu_count, int) and gpu_count >= 1):
            raise ValueError(f"gpu_count must be a positive integer, got {gpu_count!r}")
        if cloud not in ("SECURE", "COMMUNITY"):
            raise ValueError(f"cloud must be SECURE or COMMUNITY, got {cloud!r}")
        _require_id(gpu_type, "GPU type")
        query = urlencode({"include": "AVAILABILITY", "product": "POD", "count": gpu_count, "cloud": cloud})
        data = self._rest(
            "GET", f"/v2/catalog/gpus/{quote(gpu_type, safe='')}?{query}", operation="on-demand price (v2 catalog)"
        )
        return _catalog_price_from_v2(data, gpu_type, cloud, gpu_count, data_center)

    # ------------------------------------------------------------ billing
    def pod_billing(self, pod_id: str, *, start: str, bucket: str = "hour") -> PodBilling:
        """REST v2 `GET /v2/billing/pods?podId=..&bucketSize=..&startTime=..`: what RunPod billed for the pod
        from the bucket holding `start` (RFC 3339; RunPod snaps it down to the bucket's start) until now.
        Billing lags behind the pod's running time; the caller says so."""
        _require_id(pod_id, "pod id")
        if bucket not in ("hour", "day", "week", "month", "year"):
            raise ValueError(f"bucket must be hour, day, week, month or year, got {bucket!r}")
        query = urlencode({"podId": pod_id, "bucketSize": bucket, "startTime": start})
        return _billing_from_v2(self._rest("GET", f"/v2/billing/pods?{query}", operation="pod billing"))
