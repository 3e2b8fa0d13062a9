"""The fake's REST v2 catalogs, as RunPod's v2.9.0 spec shapes them: GPU types and data centers.

GET /v2/catalog/gpus[/{id}]: list prices per single GPU for both clouds (`price.secure`,
`price.community`, `price.serverless` for a pooled type), `maxCount` per cloud, and with
`include=AVAILABILITY` (which needs `product`) the overall `availability`, `dataCenters` (only the data
centers that offer the requested configuration; omitted entirely when none does) and `cudaVersions`.
Filters: count, cloud, countryCodes, cudaVersions, minCudaVersion. GET /v2/catalog/datacenters: id, name,
region, compliance, globalNetwork and volume types, with its filters and GPU_AVAILABILITY.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .state import DATA_CENTER_INFO, ApiError, DataCenterInfo, FakeState, GpuPrice

GPU_PARAMS = {"include", "product", "count", "cloud", "countryCodes", "cudaVersions", "minCudaVersion"}
DC_PARAMS = {"include", "regions", "networkVolumeTypes", "compliance", "globalNetwork"}
PRODUCTS = {"POD", "CLUSTER", "SERVERLESS"}
LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")


def _csv(query: Mapping[str, str], name: str) -> list[str]:
    return [v for v in (query.get(name) or "").split(",") if v]


def _unknown(query: Mapping[str, str], allowed: set[str]) -> None:
    extra = sorted(set(query) - allowed)
    if extra:
        raise ApiError(400, f"unknown query parameter '{extra[0]}'")


def _cuda_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        raise ApiError(400, f"'{version}' is not a CUDA version like 12.8") from None


def _info(dc: str) -> DataCenterInfo:
    return DATA_CENTER_INFO.get(dc) or DataCenterInfo(dc, "UNKNOWN", "ZZ")


class GpuQuery:
    """The GPU catalog's query string, checked the way RunPod answers a bad one (400)."""

    def __init__(self, query: Mapping[str, str]):
        _unknown(query, GPU_PARAMS)
        include = _csv(query, "include")
        if any(i != "AVAILABILITY" for i in include):
            raise ApiError(400, "include must be AVAILABILITY")
        self.availability = bool(include)
        self.products = _csv(query, "product")
        if any(p not in PRODUCTS for p in self.products):
            raise ApiError(400, "product must be POD, CLUSTER or SERVERLESS")
        if self.availability and not self.products:
            raise ApiError(400, "include=AVAILABILITY requires product")
        try:
            self.count = int(query.get("count", "1"))
        except ValueError:
            raise ApiError(400, "count must be an integer") from None
        if self.count < 1:
            raise ApiError(400, "count must be at least 1")
        self.cloud = query.get("cloud")
        if self.cloud not in (None, "SECURE", "COMMUNITY"):
            raise ApiError(400, "cloud must be SECURE or COMMUNITY")
        self.countries = set(_csv(query, "countryCodes"))
        self.cuda = [_cuda_key(v) for v in _csv(query, "cudaVersions")]
        self.min_cuda = _cuda_key(query["minCudaVersion"]) if query.get("minCudaVersion") else None

    def cuda_ok(self, version: str) -> bool:
        key = _cuda_key(version)
        return (not self.cuda or key in self.cuda) and (self.min_cuda is None or key >= self.min_cuda)

    def offered(self, price: GpuPrice) -> bool:
        """Whether the type belongs in the answer at all (countryCodes and CUDA filters narrow the list)."""
        if not any(self.cuda_ok(v) for v in price.cuda_versions):
            return False
        return not self.countries or any(
            _info(dc).country in self.countries for dc in (price.data_centers or DATA_CENTER_INFO)
        )


def gpu_type(state: FakeState, gid: str, q: GpuQuery) -> dict[str, Any]:
    p = state.prices[gid]
    price: dict[str, Any] = {"secure": p.on_demand, "community": p.community_price}
    if p.serverless is not None:
        price["serverless"] = p.serverless
    out: dict[str, Any] = {
        "id": gid,
        "name": p.display_name,
        "pool": p.pool,
        "manufacturer": p.manufacturer,
        "memory": p.memory_gb,
        "secure": True,
        "community": True,
        "price": price,
        "maxCount": {"secure": p.max_count, "community": min(p.max_count, 4)},
    }
    if not q.availability:
        return out
    max_count = min(p.max_count, 4) if q.cloud == "COMMUNITY" else p.max_count
    stocked = state.stocked_in(p) if q.count <= max_count and any(q.cuda_ok(v) for v in p.cuda_versions) else []
    if q.countries:
        stocked = [dc for dc in stocked if _info(dc).country in q.countries]
    level = p.stock.upper() if stocked else "NONE"
    out["availability"] = level if level in LEVELS else "NONE"
    if stocked:
        out["dataCenters"] = [{"id": dc, "name": _info(dc).name, "availability": out["availability"]} for dc in stocked]
    out["cudaVersions"] = [
        {"version": v, "available": bool(stocked) and q.cuda_ok(v)} for v in p.cuda_versions if q.cuda_ok(v)
    ]
    return out


def list_gpus(state: FakeState, query: Mapping[str, str]) -> dict[str, Any]:
    q = GpuQuery(query)
    return {"gpus": [gpu_type(state, gid, q) for gid, p in state.prices.items() if q.offered(p)]}


def get_gpu(state: FakeState, gid: str, query: Mapping[str, str]) -> dict[str, Any]:
    if gid not in state.prices:
        raise ApiError(404, f"GPU type '{gid}' not found")
    return gpu_type(state, gid, GpuQuery(query))


def list_data_centers(state: FakeState, query: Mapping[str, str]) -> dict[str, Any]:
    _unknown(query, DC_PARAMS)
    include = _csv(query, "include")
    if any(i not in ("GPU_AVAILABILITY", "CPU_AVAILABILITY") for i in include):
        raise ApiError(400, "include must be GPU_AVAILABILITY or CPU_AVAILABILITY")
    regions, types, compliance = _csv(query, "regions"), _csv(query, "networkVolumeTypes"), _csv(query, "compliance")
    global_network = query.get("globalNetwork")
    out = []
    for dc, volume_types in state.data_centers.items():
        info = _info(dc)
        if regions and info.region not in regions:
            continue
        if types and not set(types) & set(volume_types):
            continue
        if compliance and not set(compliance) <= set(info.compliance):
            continue
        if global_network is not None and (global_network == "true") != info.global_network:
            continue
        entry: dict[str, Any] = {
            "id": dc,
            "name": info.name,
            "region": info.region,
            "globalNetwork": info.global_network,
            "networkVolumeTypes": list(volume_types),
            "compliance": list(info.compliance),
        }
        if "GPU_AVAILABILITY" in include:
            offered = [
                {"id": gid, "name": p.display_name, "availability": p.stock.upper()}
                for gid, p in state.prices.items()
                if dc in state.stocked_in(p)
            ]
            if offered:
                entry["gpuAvailability"] = offered
        out.append(entry)
    return {"dataCenters": out}


__all__ = ["get_gpu", "list_data_centers", "list_gpus"]
