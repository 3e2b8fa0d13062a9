"""RunPod's GraphQL calls, only where REST v2 has nothing: spot create (podRentInterruptable), spot
resume (podBidResume), the minimum spot bid (gpuTypes.lowestPrice) and the pod history fields
lastStatusChange/podType (`get_pod(with_history=True)`).

A mixin of RunPodClient (backends/runpod/client.py), which supplies the transport (`_graphql`) and
the REST reads these calls use (get_pod, list_pods, find_pod).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from backends.runpod.errors import _HINT_CAPACITY, GraphQLGone, NoCapacity, NotFound, RateLimited, SpotUnavailable
from backends.runpod.models import (
    PROVISIONING,
    Pod,
    PodSpec,
    SpotPrice,
    _float_or_none,
    _interruptible_from_pod_type,
    _require_id,
    _validate_spec,
)

_GQL_POD_FIELDS = (
    "id name desiredStatus lastStatusChange podType costPerHr gpuCount imageName machineId "
    "networkVolumeId ports uptimeSeconds machine { podHostId gpuDisplayName } "
    "runtime { uptimeInSeconds ports { ip isIpPublic privatePort publicPort type } }"
)

_Q_POD = "query Pod($podId: String!) { pod(input: {podId: $podId}) { %s } }" % _GQL_POD_FIELDS
_M_RENT_SPOT = (
    "mutation RentSpot($input: PodRentInterruptableInput!) { podRentInterruptable(input: $input) "
    "{ id name desiredStatus costPerHr lastStatusChange podType machineId machine { podHostId } } }"
)
_M_BID_RESUME = (
    "mutation BidResume($podId: String!, $bidPerGpu: Float!, $gpuCount: Int!) { "
    "podBidResume(input: {podId: $podId, bidPerGpu: $bidPerGpu, gpuCount: $gpuCount}) "
    "{ id desiredStatus costPerHr lastStatusChange } }"
)
_Q_SPOT_PRICE = (
    "query SpotPrice($id: String!, $gpuCount: Int!, $dc: String) { gpuTypes(input: {id: $id}) { "
    "id displayName securePrice secureSpotPrice "
    "lowestPrice(input: {gpuCount: $gpuCount, secureCloud: true, dataCenterId: $dc}) "
    "{ minimumBidPrice uninterruptablePrice stockStatus } } }"
)
# Asked when the spot fields are gone: the on-demand price is what the spot->on-demand fallback needs.
_Q_ON_DEMAND_PRICE = (
    "query OnDemandPrice($id: String!, $gpuCount: Int!, $dc: String) { gpuTypes(input: {id: $id}) { "
    "id securePrice "
    "lowestPrice(input: {gpuCount: $gpuCount, secureCloud: true, dataCenterId: $dc}) "
    "{ uninterruptablePrice stockStatus } } }"
)


class GraphQLCalls:
    """The GraphQL half of RunPodClient (spot pods, spot prices, pod history)."""

    if TYPE_CHECKING:
        # Supplied by RunPodClient (the transport) and RestCalls; declared for the type checker only.
        def _graphql(
            self,
            query: str,
            variables: Mapping[str, Any],
            *,
            operation: str,
            spot_op: bool = False,
            on_ambiguous: Callable[[], Any] | None = None,
            wait_on_429: bool = True,
        ) -> Any: ...

        def get_pod(self, pod_id: str, *, with_history: bool = False) -> Pod: ...

        def list_pods(self, *, name: str | None = None) -> list[Pod]: ...

        def _new_pod_named(self, name: str, before: set[str]) -> Pod | None: ...

        def _booting(self, pod_id: str) -> Pod | None: ...

    def add_history(self, pod: Pod) -> Pod:
        """GraphQL lastStatusChange/podType on top of the v2 read (one more request): why a stopped pod
        stopped. The v2 pod as it is when GraphQL is gone (reading a pod never needs GraphQL:
        runner/pod/state.py classifies without the history)."""
        try:
            # Not waiting out a 429: GraphQL's staged rate limits must not stall a pod read that v2 answers.
            data = self._graphql(
                _Q_POD, {"podId": pod.id}, operation="pod history (GraphQL pod)", spot_op=True, wait_on_429=False
            )
        except (SpotUnavailable, RateLimited):
            # GraphQL retired, without the pod query, or rate-limited (staged limits since 2026-09-17).
            return pod
        g = data.get("pod")
        if not g:
            # v2 still knows the pod, GraphQL does not (or not yet): no history to add.
            return pod
        pod_type = g.get("podType")
        return dataclasses.replace(
            pod,
            desired_status=g.get("desiredStatus"),
            last_status_change=g.get("lastStatusChange"),
            pod_type=pod_type,
            interruptible=_interruptible_from_pod_type(pod_type),
        )

    def create_spot_pod(self, spec: PodSpec, bid_per_gpu: float) -> Pod:
        """GraphQL podRentInterruptable. NoCapacity / SpotUnavailable on failure.

        Not idempotent: after an ambiguous failure (timeout/reset/5xx) the client lists pods and
        adopts a new pod with the same name instead of renting a second one.
        """
        _validate_spec(spec)
        if not (isinstance(bid_per_gpu, (int, float)) and bid_per_gpu > 0):
            raise ValueError(f"bid_per_gpu must be a positive price in $/GPU-hour, got {bid_per_gpu!r}")
        inp: dict[str, Any] = {
            "bidPerGpu": float(bid_per_gpu),
            "cloudType": spec.cloud_type,
            "dataCenterId": spec.data_center,
            "gpuTypeId": spec.gpu_type,
            "gpuCount": spec.gpu_count,
            "name": spec.name,
            "imageName": spec.image,
            "containerDiskInGb": spec.container_disk_gb,
            "volumeInGb": 0,
            "ports": ",".join(spec.ports),
            "startSsh": True,
            "supportPublicIp": True,
            "env": [{"key": k, "value": v} for k, v in spec.env.items()],
        }
        if spec.start_command:
            inp["dockerArgs"] = spec.start_command
        if spec.volume_id:
            inp["networkVolumeId"] = spec.volume_id
            inp["volumeMountPath"] = spec.volume_mount_path
        before = {p.id for p in self.list_pods(name=spec.name)}
        result = self._graphql(
            _M_RENT_SPOT,
            {"input": inp},
            operation="create spot pod (podRentInterruptable)",
            spot_op=True,
            on_ambiguous=lambda: self._new_pod_named(spec.name, before),
        )
        if isinstance(result, Pod):
            return dataclasses.replace(result, interruptible=True)
        g = (result or {}).get("podRentInterruptable")
        if not g or not g.get("id"):
            raise NoCapacity("podRentInterruptable returned no pod", operation="create spot pod", hint=_HINT_CAPACITY)
        try:
            pod = self.get_pod(g["id"])
        except NotFound:  # v2 may lag right after a GraphQL create
            pod = Pod(
                id=g["id"],
                name=spec.name,
                status=PROVISIONING,
                desired_status=g.get("desiredStatus"),
                interruptible=True,
                gpu_type=spec.gpu_type,
                gpu_count=spec.gpu_count,
                cost_per_hr=float(g.get("costPerHr") or 0.0),
                data_center=spec.data_center,
                volume_id=spec.volume_id,
                ssh=None,
                last_status_change=None,
                started_at=None,
                image=spec.image,
            )
        return dataclasses.replace(
            pod,
            interruptible=True,
            desired_status=g.get("desiredStatus") or pod.desired_status,
            last_status_change=g.get("lastStatusChange"),
            pod_type=g.get("podType"),
        )

    def resume_spot_pod(self, pod_id: str, bid_per_gpu: float, gpu_count: int) -> None:
        """GraphQL podBidResume (gpuCount is required by RunPod)."""
        _require_id(pod_id, "pod id")
        if not (isinstance(bid_per_gpu, (int, float)) and bid_per_gpu > 0):
            raise ValueError(f"bid_per_gpu must be a positive price in $/GPU-hour, got {bid_per_gpu!r}")
        if not (isinstance(gpu_count, int) and gpu_count >= 1):
            raise ValueError(f"gpu_count must be a positive integer, got {gpu_count!r}")
        self._graphql(
            _M_BID_RESUME,
            {"podId": pod_id, "bidPerGpu": float(bid_per_gpu), "gpuCount": gpu_count},
            operation="resume spot pod (podBidResume)",
            spot_op=True,
            on_ambiguous=lambda: self._booting(pod_id),
        )

    def spot_price(self, gpu_type: str, gpu_count: int, data_center: str | None) -> SpotPrice:
        """GraphQL gpuTypes { lowestPrice { minimumBidPrice … } }.

        Prices are per GPU-hour (RunPod quotes minimumBidPrice per GPU; bidPerGpu is per GPU).
        """
        if not (isinstance(gpu_count, int) and gpu_count >= 1):
            raise ValueError(f"gpu_count must be a positive integer, got {gpu_count!r}")
        variables = {"id": gpu_type, "gpuCount": gpu_count, "dc": data_center}
        try:
            data = self._graphql(_Q_SPOT_PRICE, variables, operation="spot price (gpuTypes.lowestPrice)", spot_op=True)
        except GraphQLGone:
            raise  # no minimum bid anywhere any more; on_demand_price() reads the v2 catalog
        except SpotUnavailable:
            # Spot withdrawn: minimumBidPrice is gone with it, but the on-demand price still answers,
            # and a caller falling back to on-demand needs exactly that.
            data = self._graphql(_Q_ON_DEMAND_PRICE, variables, operation="on-demand price (gpuTypes)")
        types = data.get("gpuTypes") or []
        match = next((t for t in types if isinstance(t, dict) and t.get("id") == gpu_type), None)
        if match is None:
            raise NotFound(
                f"unknown GPU type {gpu_type!r}",
                operation="spot price",
                hint="use a RunPod GPU type id such as 'NVIDIA GeForce RTX 4090'",
            )
        lowest = match.get("lowestPrice") or {}
        on_demand = lowest.get("uninterruptablePrice")
        if on_demand is None:
            on_demand = match.get("securePrice")
        return SpotPrice(
            minimum_bid_per_gpu=_float_or_none(lowest.get("minimumBidPrice")),
            on_demand_price_per_gpu=_float_or_none(on_demand),
            stock_status=lowest.get("stockStatus"),
        )
