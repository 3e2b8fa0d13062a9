"""GraphQL endpoint of the fake: the RunPod operations our client and the official SDK 1.x use (its
pod and GPU calls: tests/conformance/test_runpod_sdk1.py), validated against a small schema (unknown
fields/arguments/input fields give the errors a GraphQL server gives)."""

from __future__ import annotations

from typing import Any

from . import graphql as g
from .rest import Auth
from .state import MSG_DC_UNKNOWN, MSG_TERMINATE_UNKNOWN, ApiError, FakeState, msg_bid_too_low

# type -> field -> (output type or None for scalars, is_list)
SCHEMA: dict[str, dict[str, tuple[str | None, bool]]] = {
    "Query": {"pod": ("Pod", False), "gpuTypes": ("GpuType", True), "myself": ("User", False)},
    "Mutation": {
        "podRentInterruptable": ("Pod", False),
        "podFindAndDeployOnDemand": ("Pod", False),
        "podBidResume": ("Pod", False),
        "podResume": ("Pod", False),
        "podStop": ("Pod", False),
        "podTerminate": (None, False),
    },
    "Pod": {
        k: (None, False)
        for k in (
            "id name desiredStatus lastStatusChange podType costPerHr gpuCount imageName dockerArgs machineId networkVolumeId "
            "ports uptimeSeconds volumeMountPath containerDiskInGb dockerId env memoryInGb port vcpuCount volumeInGb"
        ).split()
    }
    | {"machine": ("Machine", False), "runtime": ("PodRuntime", False)},
    "Machine": {"podHostId": (None, False), "gpuDisplayName": (None, False)},
    "PodRuntime": {"uptimeInSeconds": (None, False), "ports": ("PodRuntimePort", True)},
    "PodRuntimePort": {k: (None, False) for k in ("ip", "isIpPublic", "privatePort", "publicPort", "type")},
    "GpuType": {
        k: (None, False)
        for k in (
            "id displayName memoryInGb secureSpotPrice communitySpotPrice securePrice communityPrice maxGpuCount "
            "manufacturer cudaCores secureCloud communityCloud oneMonthPrice threeMonthPrice oneWeekPrice"
        ).split()
    }
    | {"lowestPrice": ("LowestPrice", False)},
    "LowestPrice": {
        k: (None, False)
        for k in (
            "minimumBidPrice",
            "uninterruptablePrice",
            "stockStatus",
            "availableGpuCounts",
            "maxUnreservedGpuCount",
        )
    },
    "User": {
        "id": (None, False),
        "pubKey": (None, False),
        "networkVolumes": ("NetworkVolume", True),
        "pods": ("Pod", True),
    },
    "NetworkVolume": {k: (None, False) for k in ("id", "name", "size", "dataCenterId", "storageType")}
    | {"dataCenter": ("DataCenter", False)},
    "DataCenter": {"id": (None, False), "name": (None, False)},
}

# field -> argument -> (input type name, {input field: graphql type}, required input fields)
RENT_FIELDS = {
    f: "String"
    for f in (
        "gpuTypeId cloudType dataCenterId countryCode networkVolumeId volumeMountPath imageName name dockerArgs ports "
        "templateId stopAfter terminateAfter volumeKey cudaVersion minCudaVersion"
    ).split()
}
RENT_FIELDS |= {
    f: "Int"
    for f in "gpuCount volumeInGb containerDiskInGb minVcpuCount minMemoryInGb minDownload minUpload minDisk".split()
}
RENT_FIELDS |= {
    "bidPerGpu": "Float",
    "env": "[EnvironmentVariableInput]",
    "startSsh": "Boolean",
    "startJupyter": "Boolean",
    "supportPublicIp": "Boolean",
    "allowedCudaVersions": "[String]",
}
INPUTS: dict[tuple[str, str], tuple[str, dict[str, str], set[str]]] = {
    ("podRentInterruptable", "input"): ("PodRentInterruptableInput", RENT_FIELDS, {"bidPerGpu"}),
    ("podFindAndDeployOnDemand", "input"): (
        "PodFindAndDeployOnDemandInput",
        {k: v for k, v in RENT_FIELDS.items() if k != "bidPerGpu"},
        set(),
    ),
    ("podBidResume", "input"): (
        "PodBidResumeInput",
        {"podId": "String", "bidPerGpu": "Float", "gpuCount": "Int"},
        {"podId", "bidPerGpu", "gpuCount"},
    ),  # gpuCount: required in practice
    ("podResume", "input"): ("PodResumeInput", {"podId": "String", "gpuCount": "Int"}, {"podId"}),
    ("podStop", "input"): ("PodStopInput", {"podId": "String", "incrementVersion": "Boolean"}, {"podId"}),
    ("podTerminate", "input"): ("PodTerminateInput", {"podId": "String"}, {"podId"}),
    ("pod", "input"): ("PodFilter", {"podId": "String"}, {"podId"}),
    ("gpuTypes", "input"): ("GpuTypeFilter", {"id": "String", "ids": "[String]"}, set()),
    ("lowestPrice", "input"): (
        "LowestPriceInput",
        {
            "gpuCount": "Int",
            "secureCloud": "Boolean",
            "dataCenterId": "String",
            "countryCode": "String",
            "minDisk": "Int",
            "minMemoryInGb": "Int",
            "minVcpuCount": "Int",
            "supportPublicIp": "Boolean",
            "minDownload": "Int",
            "minUpload": "Int",
            "globalNetwork": "Boolean",
        },
        {"gpuCount"},
    ),
}
SPOT_FIELDS = {("Mutation", "podRentInterruptable"), ("Mutation", "podBidResume"), ("LowestPrice", "minimumBidPrice")}
POD_KEY_FIELDS = {"podStop", "pod"}  # what a pod-scoped key may do (own pod only)


def _position_type(field: str, arg: str, key: str | None = None) -> str | None:
    """The GraphQL type expected where a variable sits: the argument itself (`input: $input`, our input
    arguments are all non-null) or one field of an input object literal (`input: {podId: $podId}`)."""
    spec = INPUTS.get((field, arg))
    if spec is None:
        return None
    in_name, in_fields, required = spec
    if key is None:
        return in_name + "!"
    if key not in in_fields:
        return None  # reported by _validate as an undefined input field
    return in_fields[key] + ("!" if key in required else "")


def _variable_problems(op: g.Operation) -> list[str]:
    """The standard rules of variables (GraphQL spec 5.8): every variable used is defined, every one
    defined is used, and a nullable variable without a default never sits in a non-null position."""
    defs = {vd.name: vd for vd in op.var_defs}
    used: set[str] = set()
    problems: list[str] = []
    where = f' in operation "{op.name}"' if op.name else ""
    by = f' by operation "{op.name}"' if op.name else ""

    def check(var: g.Var, expected: str | None) -> None:
        used.add(var.name)
        vd = defs.get(var.name)
        if vd is None:
            problems.append(f'Variable "${var.name}" is not defined{by}.')
            return
        if expected is None:
            return
        var_type = vd.type
        if expected.endswith("!") and not var_type.endswith("!") and not vd.has_default:
            problems.append(
                f'Variable "${var.name}" of type "{var_type}" used in position expecting type "{expected}".'
            )
        elif var_type.rstrip("!") != expected.rstrip("!"):
            problems.append(
                f'Variable "${var.name}" of type "{var_type}" used in position expecting type "{expected}".'
            )

    def walk_value(value: Any, field: str, arg: str, key: str | None) -> None:
        if isinstance(value, g.Var):
            check(value, _position_type(field, arg, key))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk_value(v, field, arg, k if key is None else None)
        elif isinstance(value, list):
            for v in value:
                walk_value(v, field, arg, None)

    def walk(fields: list[g.Field] | None) -> None:
        for f in fields or []:
            for arg, value in f.args.items():
                walk_value(value, f.name, arg, None)
            walk(f.selections)

    walk(op.selections)
    for name in defs:
        if name not in used:
            problems.append(f'Variable "${name}" is never used{where}.')
    return problems


class _Validation(Exception):
    def __init__(self, messages: list[str], http_status: int = 200):
        super().__init__("; ".join(messages))
        self.messages = messages
        self.http_status = http_status


def _err(message: str, path: list | None = None, code: str = "RUNPOD") -> dict:
    e: dict[str, Any] = {"message": message, "extensions": {"code": code}}
    if path:
        e["path"] = path
    return e


class GraphQLApi:
    def __init__(self, state: FakeState):
        self.s = state

    def _field_def(self, typ: str, name: str) -> tuple[str | None, bool] | None:
        if not self.s.spot_enabled and (typ, name) in SPOT_FIELDS:
            return None
        return SCHEMA.get(typ, {}).get(name)

    # ---------------------------------------------------------------- validation
    def _validate(self, typ: str, fields: list[g.Field], variables: dict, problems: list[str]) -> None:
        for f in fields:
            if f.name == "__typename":
                continue
            d = self._field_def(typ, f.name)
            if d is None:
                problems.append(f'Cannot query field "{f.name}" on type "{typ}".')
                continue
            out, _ = d
            allowed_args = {a for (fld, a) in INPUTS if fld == f.name}
            for arg, value in f.args.items():
                if arg not in allowed_args:
                    problems.append(f'Unknown argument "{arg}" on field "{typ}.{f.name}".')
                    continue
                in_name, in_fields, required = INPUTS[(f.name, arg)]
                resolved = g.resolve(value, variables)
                if not isinstance(resolved, dict):
                    problems.append(f'Expected value of type "{in_name}!", found {resolved!r}.')
                    continue
                for k in resolved:
                    if k not in in_fields:
                        problems.append(f'Field "{k}" is not defined by type "{in_name}".')
                for k in sorted(required):
                    if resolved.get(k) is None:
                        problems.append(f'Field "{in_name}.{k}" of required type "{in_fields[k]}!" was not provided.')
            if out is None and f.selections:
                problems.append(f'Field "{f.name}" must not have a selection since type "String" has no subfields.')
            elif out is not None and not f.selections:
                problems.append(f'Field "{f.name}" of type "{out}" must have a selection of subfields.')
            elif out is not None:
                self._validate(out, f.selections, variables, problems)

    # ---------------------------------------------------------------- execution
    def execute(self, body: Any, auth: Auth) -> tuple[int, dict, list[str]]:
        """(http status, response document, root field names)."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, {"errors": [_err("Must provide query string.", code="BAD_USER_INPUT")]}, []
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return 400, {"errors": [_err("Variables must be an object.", code="BAD_USER_INPUT")]}, []
        try:
            ops = g.parse(body["query"])
        except g.GraphQLSyntaxError as exc:
            return 400, {"errors": [_err(str(exc), code="GRAPHQL_PARSE_FAILED")]}, []
        op = ops[0]
        if len(ops) > 1:
            wanted = body.get("operationName")
            op = next((o for o in ops if o.name == wanted), None)
            if op is None:
                return (
                    400,
                    {
                        "errors": [
                            _err(
                                "Must provide operation name if query contains multiple operations.",
                                code="BAD_USER_INPUT",
                            )
                        ]
                    },
                    [],
                )
        roots = [f.name for f in op.selections]
        problems: list[str] = _variable_problems(op)
        for vd in op.var_defs:
            if vd.required and variables.get(vd.name) is None:
                problems.append(f'Variable "${vd.name}" of required type "{vd.type}" was not provided.')
            if vd.name not in variables and vd.has_default:
                variables[vd.name] = vd.default
        self._validate("Mutation" if op.kind == "mutation" else "Query", op.selections, variables, problems)
        if problems:
            # RunPod answers a podBidResume without gpuCount with HTTP 400 (runpodctl #156).
            status = 400 if any("PodBidResumeInput.gpuCount" in p for p in problems) else 200
            return status, {"errors": [_err(p, code="GRAPHQL_VALIDATION_FAILED") for p in problems]}, roots
        if auth.kind == "pod":
            for f in op.selections:
                pid = (g.resolve(f.args.get("input"), variables) or {}).get("podId")
                if f.name not in POD_KEY_FIELDS or pid != auth.pod_id:
                    return (
                        403,
                        {
                            "errors": [
                                _err(
                                    "access denied: a pod-scoped key may only read and stop its own pod",
                                    code="FORBIDDEN",
                                )
                            ]
                        },
                        roots,
                    )
        data: dict[str, Any] = {}
        errors: list[dict] = []
        typ = "Mutation" if op.kind == "mutation" else "Query"
        for f in op.selections:
            if f.name == "__typename":
                data[f.key] = typ
                continue
            args = {k: g.resolve(v, variables) for k, v in f.args.items()}
            try:
                value = getattr(self, "r_" + f.name)(args.get("input") or {}, f)
                out, is_list = SCHEMA[typ][f.name]
                data[f.key] = self._project(value, out, is_list, f, variables)
            except ApiError as exc:
                data[f.key] = None
                errors.append(_err(exc.detail, [f.key]))
        doc: dict[str, Any] = {"data": data}
        if errors:
            doc["errors"] = errors
        return 200, doc, roots

    def _project(self, value: Any, typ: str | None, is_list: bool, f: g.Field, variables: dict) -> Any:
        if value is None or typ is None:
            return value
        if is_list:
            return [self._project(v, typ, False, f, variables) for v in value]
        out = {}
        for sub in f.selections or []:
            if sub.name == "__typename":
                out[sub.key] = typ
                continue
            sub_typ, sub_list = SCHEMA[typ][sub.name]
            v = value.get(sub.name)
            if callable(v):  # field with arguments (lowestPrice)
                v = v({k: g.resolve(a, variables) for k, a in sub.args.items()}.get("input") or {})
            out[sub.key] = self._project(v, sub_typ, sub_list, sub, variables)
        return out

    # ---------------------------------------------------------------- resolvers
    def _live(self, pod_id: Any, missing: str = "Pod not found.") -> Any:
        pod = self.s.pod(pod_id) if isinstance(pod_id, str) else None
        if pod is None:
            raise ApiError(400, missing)
        return pod

    def r_pod(self, inp: dict, f: g.Field) -> Any:
        pod = self.s.pod(inp.get("podId"))
        return pod.gql() if pod else None  # terminated/unknown -> null (reference §5.2)

    def r_podStop(self, inp: dict, f: g.Field) -> Any:
        pod = self._live(inp.get("podId"))
        return self.s.stop(pod, api="graphql").gql()

    def r_podTerminate(self, inp: dict, f: g.Field) -> Any:
        pod = self._live(inp.get("podId"), MSG_TERMINATE_UNKNOWN)
        self.s.terminate(pod)
        return None

    def r_podResume(self, inp: dict, f: g.Field) -> Any:
        pod = self._live(inp.get("podId"))
        return self.s.start(pod, api="graphql", spot_bid=None, gpu_count=inp.get("gpuCount")).gql()

    def r_podBidResume(self, inp: dict, f: g.Field) -> Any:
        pod = self._live(inp.get("podId"))
        return self.s.start(pod, api="graphql", spot_bid=float(inp["bidPerGpu"]), gpu_count=inp.get("gpuCount")).gql()

    def r_podRentInterruptable(self, inp: dict, f: g.Field) -> Any:
        return self._create(inp, interruptible=True)

    def r_podFindAndDeployOnDemand(self, inp: dict, f: g.Field) -> Any:
        """The on-demand create of the GraphQL API (SDK 1.x create_pod); REST v2 POST /v2/pods replaces it."""
        return self._create(inp, interruptible=False)

    def _create(self, inp: dict, *, interruptible: bool) -> Any:
        cloud = inp.get("cloudType") or "ALL"
        if cloud not in ("SECURE", "COMMUNITY", "ALL"):
            raise ApiError(400, f'Value "{cloud}" does not exist in "CloudTypeEnum" enum.')
        dc = inp.get("dataCenterId")
        if dc is not None and not isinstance(dc, str):
            raise ApiError(400, MSG_DC_UNKNOWN)
        env_list = inp.get("env") or []
        env = {}
        for item in env_list:
            if not isinstance(item, dict) or set(item) - {"key", "value"} or "key" not in item:
                raise ApiError(400, 'Expected value of type "EnvironmentVariableInput".')
            env[str(item["key"])] = str(item.get("value") or "")
        ports = [p.strip() for p in str(inp.get("ports") or "").split(",") if p.strip()]
        pod = self.s.create_pod(
            api="graphql",
            name=inp.get("name") or "",
            image=inp.get("imageName") or "",
            gpu_type=inp.get("gpuTypeId") or "",
            gpu_count=int(inp.get("gpuCount") or 1),
            cloud=cloud,
            data_centers=[dc] if dc else [],
            volume_id=inp.get("networkVolumeId"),
            mount_path=inp.get("volumeMountPath"),
            ports=ports,
            env=env,
            disk=int(inp.get("containerDiskInGb") or 20),
            interruptible=interruptible,
            bid_per_gpu=float(inp["bidPerGpu"]) if interruptible else None,
            args=str(inp.get("dockerArgs") or ""),
        )
        return pod.gql()

    def r_gpuTypes(self, inp: dict, f: g.Field) -> Any:
        ids = [inp["id"]] if inp.get("id") else (inp.get("ids") or list(self.s.prices))
        out = []
        for gid in ids:
            price = self.s.prices.get(gid)
            if price is None:
                continue

            def lowest(args: dict, price=price) -> dict:
                n = int(args.get("gpuCount") or 1)
                dc = args.get("dataCenterId")
                if dc is not None and not isinstance(dc, str):
                    raise ApiError(400, MSG_DC_UNKNOWN)
                return {
                    "minimumBidPrice": price.minimum_bid,
                    "uninterruptablePrice": price.on_demand,
                    "stockStatus": price.stock,
                    "availableGpuCounts": [1, 2, 4, 8] if price.stock != "None" else [],
                    "maxUnreservedGpuCount": 8 if n <= 8 else 0,
                }

            out.append(
                {
                    "id": gid,
                    "displayName": price.display_name,
                    "memoryInGb": price.memory_gb,
                    "secureSpotPrice": price.spot,
                    "communitySpotPrice": round(price.spot * 0.8, 3),
                    "securePrice": price.on_demand,
                    "communityPrice": price.community_price,
                    "maxGpuCount": 8,
                    "manufacturer": "Nvidia",
                    "cudaCores": 0,
                    "secureCloud": True,
                    "communityCloud": True,
                    "oneWeekPrice": price.on_demand,
                    "oneMonthPrice": price.on_demand,
                    "threeMonthPrice": price.on_demand,
                    "lowestPrice": lowest,
                }
            )
        return out

    def r_myself(self, inp: dict, f: g.Field) -> Any:
        return {
            "id": "user_fake",
            "pubKey": "",
            "networkVolumes": [v.gql() for v in self.s.volumes.values()],
            "pods": [p.gql() for p in self.s.live_pods()],
        }


__all__ = ["GraphQLApi", "SCHEMA", "msg_bid_too_low"]
