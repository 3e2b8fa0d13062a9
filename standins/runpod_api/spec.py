"""RunPod's REST v2 as its published spec shapes it: the bodies this project sends and receives.

Written from the facts of RunPod's OpenAPI document, Frontdoor v2.9.0 (runpod/docs
`api-reference-v2/openapi.json` @ 098c7fb0, 2026-08-18), for the operations the project uses: pods,
pod actions, network volumes, the GPU and data-center catalogs, pod billing, pagination and errors.
It is not a copy of the document: objects here are closed (a field the spec does not name is an
error), so a fake that serves an invented field, or omits a required one, fails its tests.

Two departures, each from a public source:
- `pagination` {hasNextPage, nextCursor} on list answers: RunPod's SDK 2.0.0rc2 requires it on
  /v2/network-volumes and SkyPilot walks it on /v2/pods; v2.9.0 documents none (accept both).
- Requests from other clients (the official SDK in tests/conformance) may carry the GPU fields
  `minRamPerGpu`/`minVcpuCountPerGpu`, which SDK 2.0.0rc2 sends; this project's client is held to the
  strict v2.9.0 request schemas (`unevaluatedProperties: false`) with no such allowance.

`scripts/check_runpod_spec.py PATH/openapi.json` compares these schemas with a copy of the document.
jsonschema (the test extra) validates; this module imports it only when a validator is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SPEC_VERSION = "RunPod REST API v2, Frontdoor v2.9.0 (runpod/docs api-reference-v2/openapi.json @ 098c7fb0)"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed object: only these properties, the required ones present."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
CUDA = {"type": "string", "pattern": r"^\d+\.\d+$"}

DEFS: dict[str, dict[str, Any]] = {
    # ---------------------------------------------------------------- enums
    "PodStatus": _enum("PROVISIONING", "STARTING", "RUNNING", "EXITED", "ERROR", "TERMINATED"),
    "PodAction": _enum("start", "stop", "restart", "terminate"),
    "Cloud": _enum("SECURE", "COMMUNITY"),
    "VolumeType": _enum("STANDARD", "HIGH_PERFORMANCE"),
    "AvailabilityLevel": _enum("NONE", "LOW", "MEDIUM", "HIGH"),
    "GpuManufacturer": _enum("NVIDIA", "AMD", "UNKNOWN"),
    "DataCenterRegion": _enum(
        "NORTH_AMERICA", "SOUTH_AMERICA", "EUROPE", "ASIA", "MIDDLE_EAST", "AFRICA", "OCEANIA", "ANTARCTICA", "UNKNOWN"
    ),
    "Compliance": _enum(
        "GDPR",
        "ISO_IEC_27001",
        "ISO_14001",
        "PCI_DSS",
        "HITRUST",
        "SOC_1_TYPE_2",
        "SOC_2_TYPE_2",
        "SOC_3_TYPE_2",
        "ITAR",
        "FISMA_HIGH",
        "HIPAA",
        "RENEWABLE",
    ),
    "BillingBucketSize": _enum("hour", "day", "week", "month", "year"),
    # ---------------------------------------------------------------- shared pieces
    "ErrorResponse": _obj(
        {"title": STR, "status": INT, "detail": STR, "errors": {"type": "array", "items": STR}},
        ("title", "status", "detail"),
    ),
    "Pagination": _obj({"hasNextPage": BOOL, "nextCursor": _nullable(STR)}, ("hasNextPage",)),
    "NetworkMount": _obj({"volumeId": STR, "path": STR}, ("volumeId", "path")),
    "PersistentMount": _obj({"size": {"type": "integer", "minimum": 10}, "path": STR}, ("size", "path")),
    "Mounts": _obj(
        {
            "persistent": _ref("PersistentMount"),
            "network": {"type": "array", "maxItems": 1, "items": _ref("NetworkMount")},
        }
    ),
    "Env": {"type": "object", "additionalProperties": STR},
    "Ports": {"type": "array", "items": STR},
    # ---------------------------------------------------------------- pods
    "GpuConfig": _obj({"id": STR, "count": {"type": "integer", "minimum": 1}}, ("id",)),
    "CreateCpuConfig": _obj(
        {"id": {"type": "string", "minLength": 1}, "vcpuCount": {"type": "integer", "minimum": 2}}, ("id", "vcpuCount")
    ),
    "CpuConfig": _obj(
        {
            "id": {"type": "string", "minLength": 1},
            "vcpuCount": {"type": "integer", "minimum": 2},
            "memory": {"type": "integer", "minimum": 1},
        },
        ("id", "vcpuCount", "memory"),
    ),
    "PodSshEndpoint": _obj(
        {"host": STR, "port": INT, "username": STR, "command": STR}, ("host", "port", "username", "command")
    ),
    "PodSsh": _obj(
        {"proxy": _nullable(_ref("PodSshEndpoint")), "direct": _nullable(_ref("PodSshEndpoint"))}, ("proxy", "direct")
    ),
    "PodCluster": _obj(
        {
            "id": STR,
            "rank": _nullable(INT),
            "role": _enum("SLURM_CONTROLLER", "SLURM_COMPUTE", "RAY_HEAD", "RAY_WORKER"),
            "ip": STR,
        },
        ("id", "rank"),
    ),
    "PodGlobalNetworking": _obj({"enabled": BOOL, "ip": STR, "internalDns": STR}, ("enabled",)),
    "Utilization": _obj({"util": INT}),
    "PodGpuUtilization": _obj({"util": INT, "memoryUtil": INT}),
    "PodRuntimePort": _obj({"private": INT, "public": _nullable(INT), "type": STR, "ip": _nullable(STR)}),
    "PodRuntime": _obj(
        {
            "uptime": INT,
            "gpus": {"type": "array", "items": _ref("PodGpuUtilization")},
            "cpu": _ref("Utilization"),
            "memory": _ref("Utilization"),
            "ports": {"type": "array", "items": _ref("PodRuntimePort")},
        }
    ),
    "Pod": _obj(
        {
            "id": STR,
            "name": STR,
            "status": _ref("PodStatus"),
            "actions": {"type": "array", "items": _ref("PodAction")},
            "image": STR,
            "args": STR,
            "disk": {"type": "integer", "minimum": 1},
            "mounts": _ref("Mounts"),
            "ports": _ref("Ports"),
            "env": _ref("Env"),
            "registry": _nullable(STR),
            "gpu": _ref("GpuConfig"),
            "cpu": _ref("CpuConfig"),
            "cloud": _ref("Cloud"),
            "dataCenterId": _nullable(STR),
            "cudaVersion": _nullable(STR),
            "ssh": _ref("PodSsh"),
            "cluster": _ref("PodCluster"),
            "template": _nullable(STR),
            "cost": NUM,
            "locked": BOOL,
            "globalNetworking": _ref("PodGlobalNetworking"),
            "runtime": _nullable(_ref("PodRuntime")),
            "createdAt": STR,
            "startedAt": _nullable(STR),
        },
        (
            "id",
            "name",
            "status",
            "actions",
            "image",
            "args",
            "disk",
            "mounts",
            "ports",
            "env",
            "registry",
            "cloud",
            "dataCenterId",
            "cudaVersion",
            "ssh",
            "template",
            "cost",
            "locked",
            "runtime",
            "createdAt",
            "startedAt",
            "globalNetworking",
        ),
    ),
    "ListPodsResponse": _obj(
        {"pods": {"type": "array", "items": _ref("Pod")}, "pagination": _ref("Pagination")}, ("pods",)
    ),
    "CreateGpuConfig": _obj(
        {
            "id": STR,
            "count": {"type": "integer", "minimum": 1},
            "allowedCudaVersions": {"type": "array", "items": CUDA},
            "minCudaVersion": CUDA,
        },
        ("id",),
    ),
    "CreatePodRequest": _obj(
        {
            "name": {"type": "string", "minLength": 1},
            "image": STR,
            "args": STR,
            "disk": {"type": "integer", "minimum": 1},
            "env": _ref("Env"),
            "ports": _ref("Ports"),
            "registry": _nullable(STR),
            "cloud": _ref("Cloud"),
            "cpu": _ref("CreateCpuConfig"),
            "dataCenterIds": {"type": "array", "items": STR},
            "globalNetworking": BOOL,
            "gpu": _ref("CreateGpuConfig"),
            "mounts": _ref("Mounts"),
            "startJupyter": BOOL,
            "startSsh": BOOL,
            "templateId": {"type": "string", "minLength": 1},
        },
        ("name",),
    ),
    "PodActionRequest": _obj({"action": _ref("PodAction")}, ("action",)),
    # ---------------------------------------------------------------- network volumes
    "NetworkVolume": _obj(
        {
            "id": STR,
            "name": STR,
            "size": {"type": "integer", "minimum": 10, "maximum": 4096},
            "dataCenter": STR,
            "type": _ref("VolumeType"),
        },
        ("id", "name", "size", "dataCenter", "type"),
    ),
    "ListNetworkVolumesResponse": _obj(
        {"networkVolumes": {"type": "array", "items": _ref("NetworkVolume")}, "pagination": _ref("Pagination")},
        ("networkVolumes",),
    ),
    "CreateNetworkVolumeRequest": _obj(
        {
            "name": {"type": "string", "minLength": 1},
            "size": {"type": "integer", "minimum": 10, "maximum": 4096},
            "dataCenter": {"type": "string", "minLength": 1},
            "type": _ref("VolumeType"),
        },
        ("name", "size", "dataCenter"),
    ),
    "UpdateNetworkVolumeRequest": {
        **_obj(
            {
                "name": {"type": "string", "minLength": 1},
                "size": {"type": "integer", "minimum": 10, "maximum": 4096},
            }
        ),
        "minProperties": 1,
    },
    # ---------------------------------------------------------------- catalogs
    "DataCenterAvailability": _obj(
        {"id": STR, "name": STR, "availability": _ref("AvailabilityLevel")}, ("id", "name", "availability")
    ),
    "CudaVersionAvailability": _obj({"version": CUDA, "available": BOOL}, ("version", "available")),
    "GpuType": _obj(
        {
            "id": STR,
            "name": STR,
            "pool": _nullable(STR),
            "manufacturer": _ref("GpuManufacturer"),
            "memory": INT,
            "secure": BOOL,
            "community": BOOL,
            "price": _obj({"secure": NUM, "community": NUM, "serverless": NUM}, ("secure", "community")),
            "maxCount": _obj({"secure": INT, "community": INT}, ("secure", "community")),
            "availability": _ref("AvailabilityLevel"),
            "dataCenters": {"type": "array", "items": _ref("DataCenterAvailability")},
            "cudaVersions": {"type": "array", "items": _ref("CudaVersionAvailability")},
        },
        ("id", "name", "pool", "manufacturer", "memory", "secure", "community", "price", "maxCount"),
    ),
    "ListGpuTypesResponse": _obj({"gpus": {"type": "array", "items": _ref("GpuType")}}, ("gpus",)),
    "CatalogResourceAvailability": _obj(
        {"id": STR, "name": STR, "availability": _ref("AvailabilityLevel")}, ("id", "name", "availability")
    ),
    "DataCenter": _obj(
        {
            "id": STR,
            "name": STR,
            "region": _ref("DataCenterRegion"),
            "globalNetwork": BOOL,
            "networkVolumeTypes": {"type": "array", "items": _ref("VolumeType")},
            "compliance": {"type": "array", "items": _ref("Compliance")},
            "gpuAvailability": {"type": "array", "items": _ref("CatalogResourceAvailability")},
            "cpuAvailability": {"type": "array", "items": _ref("CatalogResourceAvailability")},
        },
        ("id", "name", "region", "networkVolumeTypes", "compliance", "globalNetwork"),
    ),
    "ListDataCentersResponse": _obj({"dataCenters": {"type": "array", "items": _ref("DataCenter")}}, ("dataCenters",)),
    # ---------------------------------------------------------------- billing
    "PodBillingRecord": _obj(
        {
            "startTime": STR,
            "endTime": STR,
            "totalAmount": NUM,
            "gpuAmount": NUM,
            "cpuAmount": NUM,
            "diskAmount": NUM,
            "podId": STR,
        },
        ("startTime", "endTime", "totalAmount", "gpuAmount", "cpuAmount", "diskAmount", "podId"),
    ),
    "PodBillingQuery": _obj(
        {"startTime": STR, "endTime": STR, "bucketSize": _ref("BillingBucketSize"), "podId": _nullable(STR)},
        ("startTime", "endTime", "bucketSize"),
    ),
    "PodBillingAmounts": _obj(
        {"totalAmount": NUM, "gpuAmount": NUM, "cpuAmount": NUM, "diskAmount": NUM},
        ("totalAmount", "gpuAmount", "cpuAmount", "diskAmount"),
    ),
    "ListPodBillingResponse": _obj(
        {
            "records": {"type": "array", "items": _ref("PodBillingRecord")},
            "metadata": _obj(
                {
                    "query": _ref("PodBillingQuery"),
                    "recordCount": INT,
                    "uniquePodCount": INT,
                    "totals": _ref("PodBillingAmounts"),
                },
                ("query", "recordCount", "uniquePodCount", "totals"),
            ),
        },
        ("records", "metadata"),
    ),
}

# Query parameters per operation: name -> schema of one value (arrays are comma-separated, `explode: false`).
_CSV = "csv"
QUERY: dict[str, dict[str, Any]] = {
    "listPods": {"includeClusterPods": _enum("true", "false"), "cursor": STR},
    "listNetworkVolumes": {"cursor": STR},
    "gpuCatalog": {
        "include": (_CSV, _enum("AVAILABILITY")),
        "product": (_CSV, _enum("POD", "CLUSTER", "SERVERLESS")),
        "count": {"type": "string", "pattern": r"^[1-9]\d*$"},
        "cloud": _enum("SECURE", "COMMUNITY"),
        "countryCodes": (_CSV, {"type": "string", "pattern": r"^[A-Z]{2}$"}),
        "cudaVersions": (_CSV, CUDA),
        "minCudaVersion": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
    },
    "dataCenterCatalog": {
        "include": (_CSV, _enum("GPU_AVAILABILITY", "CPU_AVAILABILITY")),
        "regions": (_CSV, DEFS["DataCenterRegion"]),
        "networkVolumeTypes": (_CSV, DEFS["VolumeType"]),
        "compliance": (_CSV, DEFS["Compliance"]),
        "globalNetwork": _enum("true", "false"),
    },
    "podBilling": {
        "startTime": STR,
        "endTime": STR,
        "bucketSize": DEFS["BillingBucketSize"],
        "lastN": {"type": "string", "pattern": r"^[1-9]\d*$"},
        "podId": STR,
    },
    "none": {},
}


@dataclass(frozen=True)
class Operation:
    """One REST v2 operation: its request body schema (None: no body) and its success answer."""

    name: str
    method: str
    path: re.Pattern[str]
    request: str | None
    response: str | None  # None: always 204, no body (podAction answers 204 too, for terminate)
    query: str = "none"


OPERATIONS: tuple[Operation, ...] = (
    Operation("listPods", "GET", re.compile(r"^/v2/pods$"), None, "ListPodsResponse", "listPods"),
    Operation("createPod", "POST", re.compile(r"^/v2/pods$"), "CreatePodRequest", "Pod"),
    Operation("getPod", "GET", re.compile(r"^/v2/pods/[^/]+$"), None, "Pod"),
    Operation("deletePod", "DELETE", re.compile(r"^/v2/pods/[^/]+$"), None, None),
    Operation("podAction", "POST", re.compile(r"^/v2/pods/[^/]+/action$"), "PodActionRequest", "Pod"),
    Operation(
        "listNetworkVolumes",
        "GET",
        re.compile(r"^/v2/network-volumes$"),
        None,
        "ListNetworkVolumesResponse",
        "listNetworkVolumes",
    ),
    Operation(
        "createNetworkVolume",
        "POST",
        re.compile(r"^/v2/network-volumes$"),
        "CreateNetworkVolumeRequest",
        "NetworkVolume",
    ),
    Operation("getNetworkVolume", "GET", re.compile(r"^/v2/network-volumes/[^/]+$"), None, "NetworkVolume"),
    Operation(
        "updateNetworkVolume",
        "PATCH",
        re.compile(r"^/v2/network-volumes/[^/]+$"),
        "UpdateNetworkVolumeRequest",
        "NetworkVolume",
    ),
    Operation("deleteNetworkVolume", "DELETE", re.compile(r"^/v2/network-volumes/[^/]+$"), None, None),
    Operation("listGpuTypes", "GET", re.compile(r"^/v2/catalog/gpus$"), None, "ListGpuTypesResponse", "gpuCatalog"),
    Operation("getGpuType", "GET", re.compile(r"^/v2/catalog/gpus/[^/]+$"), None, "GpuType", "gpuCatalog"),
    Operation(
        "listDataCenters",
        "GET",
        re.compile(r"^/v2/catalog/datacenters$"),
        None,
        "ListDataCentersResponse",
        "dataCenterCatalog",
    ),
    Operation("listPodBilling", "GET", re.compile(r"^/v2/billing/pods$"), None, "ListPodBillingResponse", "podBilling"),
)

# Sent by RunPod's SDK 2.0.0rc2 in `gpu` (probably accepted by a later API version); allowed for other clients only.
SDK_GPU_EXTRAS = {
    "minRamPerGpu": {"type": "integer", "minimum": 1},
    "minVcpuCountPerGpu": {"type": "integer", "minimum": 1},
}


def operation(method: str, path: str) -> Operation | None:
    return next((op for op in OPERATIONS if op.method == method and op.path.match(path)), None)


class SpecValidator:
    """Checks request bodies, query strings and answers against the schemas above (jsonschema, 2020-12)."""

    def __init__(self) -> None:
        from jsonschema import Draft202012Validator  # the test extra; nothing in the product imports this module

        self._cls = Draft202012Validator
        self._validators: dict[tuple[str, bool], Any] = {}

    def _validator(self, name: str, *, lenient_gpu: bool = False) -> Any:
        key = (name, lenient_gpu)
        if key not in self._validators:
            defs = DEFS
            if lenient_gpu:
                gpu = dict(DEFS["CreateGpuConfig"])
                gpu["properties"] = {**gpu["properties"], **SDK_GPU_EXTRAS}
                defs = {**DEFS, "CreateGpuConfig": gpu}
            self._validators[key] = self._cls({"$schema": DIALECT, "$defs": defs, **_ref(name)})
        return self._validators[key]

    def _errors(self, name: str, value: Any, *, lenient_gpu: bool = False) -> list[str]:
        found = self._validator(name, lenient_gpu=lenient_gpu).iter_errors(value)
        return sorted(f"{'/'.join(str(p) for p in e.absolute_path) or '$'}: {e.message}" for e in found)

    def request(self, method: str, path: str, query: Mapping[str, str], body: Any, *, ours: bool) -> list[str]:
        """What is wrong with a request (empty: nothing). `ours`: sent by this project's client (strict)."""
        op = operation(method, path)
        if op is None:
            return [f"{method} {path}: not an operation of the spec this project uses"]
        problems = [f"{op.name} query: {p}" for p in self._query_problems(op, query)]
        if op.request is None:
            if body is not None:
                problems.append(f"{op.name}: the spec takes no request body")
        else:
            lenient = not ours and op.name == "createPod"
            problems += [f"{op.name} request {p}" for p in self._errors(op.request, body, lenient_gpu=lenient)]
        return problems

    def response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """What is wrong with an answer the fake gave (empty: nothing)."""
        op = operation(method, path)
        if op is None:
            return []
        if status >= 400:
            return [f"{op.name} error {status} {p}" for p in self._errors("ErrorResponse", body)]
        if op.response is None or status == 204:
            return [] if body is None else [f"{op.name}: answered {status} with a body where the spec has none"]
        return [f"{op.name} answer {p}" for p in self._errors(op.response, body)]

    def _query_problems(self, op: Operation, query: Mapping[str, str]) -> list[str]:
        allowed = QUERY[op.query]
        problems = []
        for name, value in query.items():
            schema = allowed.get(name)
            if schema is None:
                problems.append(f"parameter {name!r} is not in the spec")
                continue
            csv = isinstance(schema, tuple)
            item = schema[1] if csv else schema
            for part in value.split(",") if csv else [value]:
                problems += [
                    f"{name}={value!r}: {e.message}" for e in self._cls({"$schema": DIALECT, **item}).iter_errors(part)
                ]
        return problems


__all__ = ["DEFS", "OPERATIONS", "QUERY", "SPEC_VERSION", "Operation", "SpecValidator", "operation"]
