"""The only code that speaks RunPod's HTTP APIs.

Which API for what (the README's "How this project talks to RunPod" says why):
- REST v2 (``$RUNPOD_REST_URL/v2/...``): read/list pods, on-demand create, start/stop, terminate,
  network volumes (create/read/update/delete).
- GraphQL (``$RUNPOD_GRAPHQL_URL``), only where v2 has nothing: spot create (podRentInterruptable),
  spot resume (podBidResume), the minimum spot bid (gpuTypes.lowestPrice.minimumBidPrice) and the
  pod history fields lastStatusChange/podType (``get_pod(with_history=True)``).

Transport is stdlib ``http.client``, one connection per call; the client object holds only plain
values, so it can be created anywhere (a Pulumi dynamic provider included) and pickled. The API key
travels only in the Authorization header; it is never put in a URL, a message, a repr or a pickle.
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlsplit

DEFAULT_REST_URL = "https://api.runpod.io"          # REST v2 paths are /v2/...
DEFAULT_GRAPHQL_URL = "https://api.runpod.io/graphql"
REST_URL_ENV = "RUNPOD_REST_URL"
GRAPHQL_URL_ENV = "RUNPOD_GRAPHQL_URL"
API_KEY_ENV = "RUNPOD_API_KEY"

# REST v2 observed pod states
PROVISIONING = "PROVISIONING"
STARTING = "STARTING"
RUNNING = "RUNNING"
EXITED = "EXITED"
ERROR = "ERROR"
TERMINATED = "TERMINATED"

BOOTING_STATES = frozenset({PROVISIONING, STARTING, RUNNING})

USER_AGENT = "runpod-trainer/0.1 (+stdlib http.client)"


# ---------------------------------------------------------------- errors
class RunPodError(Exception):
    """Any failure talking to RunPod. `message` is the server's text (never the key).

    ``str(err)`` adds the operation, HTTP status, request id and, where we know one, what to do.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        operation: str | None = None,
        hint: str | None = None,
    ):
        self.message = message
        self.status = status
        self.request_id = request_id
        self.operation = operation
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.operation}: {self.message}" if self.operation else self.message
        extra = []
        if self.status is not None:
            extra.append(f"HTTP {self.status}")
        if self.request_id:
            extra.append(f"request-id {self.request_id}")
        if extra:
            text += f" ({', '.join(extra)})"
        if self.hint:
            text += f" -- {self.hint}"
        return text


class AuthError(RunPodError):
    """Missing, wrong or insufficient API key (HTTP 401/403)."""


class NotFound(RunPodError):
    """The pod or volume does not exist (404, 'pod not found', nonexistent volume)."""


class NoCapacity(RunPodError):
    """'There are no longer any instances available…' and its variants, or not enough free GPUs on the host."""


class SpotUnavailable(RunPodError):
    """The spot GraphQL operations are gone or rejected (field undefined, mutation removed)."""


class RateLimited(RunPodError):
    """HTTP 429 still returned after the client's retries; `retry_after` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class InvalidAction(RunPodError):
    """The action is not valid for the pod's current status (REST 409, 'Cannot resume a spot pod…')."""


class VolumeInUse(RunPodError):
    """A network volume cannot be deleted while a pod uses it."""


class TransientError(RunPodError):
    """5xx, connection reset or timeout, still failing after bounded retries with backoff."""


class BidTooLow(RunPodError):
    """The spot bid is below RunPod's minimum (message text UNCONFIRMED; see the README's "Assumptions")."""


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class SshEndpoint:
    host: str
    port: int
    user: str = "root"


@dataclass(frozen=True)
class Pod:
    id: str
    name: str
    status: str                      # REST v2 observed status (PROVISIONING … TERMINATED)
    desired_status: str | None       # GraphQL desiredStatus, when fetched
    interruptible: bool | None       # True = spot, False = on-demand, None = unknown
    gpu_type: str | None
    gpu_count: int
    cost_per_hr: float
    data_center: str | None
    volume_id: str | None
    ssh: SshEndpoint | None          # direct SSH endpoint; None unless RUNNING with 22/tcp public
    last_status_change: str | None   # GraphQL free text, e.g. "Outbid: <date>"
    started_at: str | None           # ISO-8601, changes on every start
    image: str | None = None
    pod_type: str | None = None      # GraphQL podType (INTERRUPTABLE, RESERVED, …), when fetched
    created_at: str | None = None

    @property
    def is_running(self) -> bool:
        return self.status == RUNNING

    @property
    def was_outbid(self) -> bool:
        return (self.last_status_change or "").lower().startswith("outbid")


@dataclass(frozen=True)
class NetworkVolume:
    id: str
    name: str
    size_gb: int
    data_center: str
    type: str = "STANDARD"


@dataclass(frozen=True)
class SpotPrice:
    minimum_bid_per_gpu: float | None
    on_demand_price_per_gpu: float | None
    stock_status: str | None


@dataclass(frozen=True)
class PodSpec:
    """Everything needed to create a pod; shared by the spot and on-demand paths."""

    name: str
    image: str
    gpu_type: str
    gpu_count: int
    data_center: str
    volume_id: str | None
    container_disk_gb: int
    volume_mount_path: str = "/workspace"
    ports: tuple[str, ...] = ("22/tcp",)
    env: Mapping[str, str] = field(default_factory=dict)
    cloud_type: str = "SECURE"


# ---------------------------------------------------------------- error classification
_CAPACITY_MARKERS = (
    "no longer any instances",
    "no instances available",
    "not enough free gpus",
    "enough disk space",
)
_SCHEMA_MARKERS = (
    "cannot query field",
    "unknown argument",
    "is not defined by type",
    "unknown type",
    "of required type",
    "graphql_validation_failed",
    "cannot return null for non-nullable",
)
_INVALID_ACTION_MARKERS = ("cannot resume", "action not valid", "already running", "not stopped")

_HINT_AUTH = "check RUNPOD_API_KEY: it must be a valid RunPod API key with read/write access"
_HINT_CAPACITY = ("RunPod has no machine for this request right now: retry later, try another data "
                  "center or GPU type, or allow the on-demand fallback")
_HINT_SPOT = ("RunPod rejected the spot (interruptible) API; spot pods may have been withdrawn -- "
              "use the on-demand market instead")
_HINT_VOLUME_IN_USE = "terminate every pod that mounts this network volume first, then delete it"
_HINT_BID = "raise the bid to at least the minimum spot bid (see spot_price())"
_HINT_BALANCE = "add credit to the RunPod account"
_HINT_RATE = "RunPod is rate limiting this key; wait a minute and try again"
_HINT_TRANSIENT = "RunPod or the network is failing; try again in a few minutes"


def _classify(message: str, *, spot_op: bool = False) -> type[RunPodError]:
    low = message.lower()
    if any(m in low for m in _CAPACITY_MARKERS):
        return NoCapacity
    if spot_op and any(m in low for m in _SCHEMA_MARKERS):
        return SpotUnavailable
    if "remove this network volume" in low:
        return VolumeInUse
    if "minimum bid" in low:
        return BidTooLow
    if any(m in low for m in _INVALID_ACTION_MARKERS):
        return InvalidAction
    if "not found" in low or "nonexistent" in low:
        return NotFound
    return RunPodError


_HINTS: dict[type, str] = {
    AuthError: _HINT_AUTH,
    NoCapacity: _HINT_CAPACITY,
    SpotUnavailable: _HINT_SPOT,
    VolumeInUse: _HINT_VOLUME_IN_USE,
    BidTooLow: _HINT_BID,
    RateLimited: _HINT_RATE,
    TransientError: _HINT_TRANSIENT,
}


class _Secret(str):
    """A str whose repr never shows the value (keeps the key out of formatted tracebacks/locals)."""

    def __repr__(self) -> str:
        return "'<redacted>'"


# ---------------------------------------------------------------- transport internals
@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    request_id: str | None

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8", "replace"))
        except ValueError:
            return None


@dataclass
class _Resolved:
    """An ambiguous failure was resolved by looking at the server's state."""

    value: Any


class _NotSent(Exception):
    """Nothing reached the server (refused, DNS, connect timeout): any call may be retried."""


class _Ambiguous(Exception):
    """The request may have been processed (timeout/reset after sending)."""


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


def _default_sleep(seconds: float) -> None:
    time.sleep(seconds)


class RunPodClient:
    """Holds only plain values (key, URLs, retry policy): safe to create anywhere, nothing to pickle.

    Every call opens its own HTTP connection. A pickled client does not carry the key: after
    unpickling it reads RUNPOD_API_KEY from the environment when it needs it.
    """

    def __init__(
        self,
        api_key: str,
        *,
        rest_url: str | None = None,
        graphql_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        sleep: Callable[[float], None] | None = None,
        backoff_base: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
    ) -> None:
        if not api_key or not api_key.strip():
            raise AuthError("no RunPod API key given", hint=f"set {API_KEY_ENV} (RunPod console > Settings > API Keys)")
        self._api_key: _Secret | None = _Secret(api_key.strip())
        rest = (rest_url or DEFAULT_REST_URL).rstrip("/")
        if rest.endswith("/v2"):
            rest = rest[: -len("/v2")]
        self.rest_url = rest
        self.graphql_url = (graphql_url or DEFAULT_GRAPHQL_URL).rstrip("/")
        for url in (self.rest_url, self.graphql_url):
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ValueError(f"not an http(s) URL: {url!r} (check {REST_URL_ENV} / {GRAPHQL_URL_ENV})")
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = float(backoff_base)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self._sleep_fn = sleep

    @classmethod
    def from_env(cls, api_key: str | None = None, **kw) -> "RunPodClient":
        """Key from the argument or RUNPOD_API_KEY; URLs from RUNPOD_REST_URL / RUNPOD_GRAPHQL_URL."""
        key = api_key or os.environ.get(API_KEY_ENV, "")
        if not key.strip():
            raise AuthError(f"{API_KEY_ENV} is not set", hint=f"export {API_KEY_ENV}=<your RunPod API key> or put it in .runpod.env")
        kw.setdefault("rest_url", os.environ.get(REST_URL_ENV) or None)
        kw.setdefault("graphql_url", os.environ.get(GRAPHQL_URL_ENV) or None)
        return cls(key, **kw)

    # ------------------------------------------------------------ object hygiene
    def __repr__(self) -> str:
        return f"RunPodClient(rest_url={self.rest_url!r}, graphql_url={self.graphql_url!r}, api_key=<redacted>)"

    __str__ = __repr__

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_api_key"] = None   # never serialise the key (Pulumi state, dill, logs)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _key(self) -> _Secret:
        if self._api_key:
            return self._api_key
        key = os.environ.get(API_KEY_ENV, "").strip()
        if not key:
            raise AuthError(f"{API_KEY_ENV} is not set", hint="an unpickled client reads the key from the environment")
        return _Secret(key)

    def _scrub(self, text: str) -> str:
        key = self._api_key or os.environ.get(API_KEY_ENV, "")
        if key and len(key) >= 4:
            text = text.replace(str(key), "<redacted>")
        return text

    def _sleep(self, seconds: float) -> None:
        fn = self._sleep_fn if self._sleep_fn is not None else _default_sleep
        fn(seconds)

    # ------------------------------------------------------------ transport
    def _send(self, method: str, url: str, payload: Any) -> _Reply:
        parts = urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname, parts.port, timeout=self.timeout)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {
            "Authorization": _Secret(f"Bearer {self._key()}"),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            try:
                conn.connect()
            except ssl.SSLCertVerificationError as exc:
                raise RunPodError(f"TLS certificate verification failed for {parts.hostname}: {exc.reason}",
                                  hint="check the system CA certificates or the RunPod URL override") from None
            except OSError as exc:
                raise _NotSent(f"cannot connect to {parts.hostname}:{parts.port or ''}: {exc.__class__.__name__}: {exc}") from None
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                raise _Ambiguous(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__) from None
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return _Reply(resp.status, hdrs, data, hdrs.get("x-request-id"))
        finally:
            conn.close()

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_base * (2 ** attempt), self.max_backoff)

    def _call(
        self,
        method: str,
        url: str,
        payload: Any,
        *,
        operation: str,
        on_ambiguous: Callable[[], Any] | None = None,
    ) -> _Reply | _Resolved:
        """Send with bounded retries.

        Retried blindly: nothing sent (refused/DNS), 429 (honouring Retry-After), 503.
        Ambiguous (timeout/reset after sending, 500/502/504): when ``on_ambiguous`` is given the
        server's state is checked first (it returns a value when the call evidently took effect,
        None to go on retrying); without it the call is treated as idempotent and retried.
        """
        last_msg = ""
        last_status: int | None = None
        last_rid: str | None = None
        for attempt in range(self.max_retries + 1):
            final = attempt == self.max_retries
            ambiguous = False
            delay = self._backoff(attempt)
            try:
                reply = self._send(method, url, payload)
            except _NotSent as exc:
                last_msg, last_status, last_rid = str(exc), None, None
            except _Ambiguous as exc:
                last_msg, last_status, last_rid = f"no answer ({exc})", None, None
                ambiguous = True
            else:
                if reply.status == 429:
                    retry_after = _parse_retry_after(reply.headers.get("retry-after"))
                    msg = _reply_message(reply) or "Too Many Requests"
                    if final or (retry_after is not None and retry_after > self.max_retry_after):
                        raise RateLimited(self._scrub(msg), retry_after=retry_after, status=429,
                                          request_id=reply.request_id, operation=operation, hint=_HINT_RATE)
                    self._sleep(retry_after if retry_after is not None else delay)
                    continue
                if reply.status < 500:
                    return reply
                last_msg = _reply_message(reply) or f"HTTP {reply.status}"
                last_status, last_rid = reply.status, reply.request_id
                ambiguous = reply.status != 503
            if ambiguous and on_ambiguous is not None:
                found = on_ambiguous()
                if found is not None:
                    return _Resolved(found)
            if not final:
                self._sleep(delay)
        hint = _HINT_TRANSIENT
        if on_ambiguous is not None:
            hint += "; the request may have taken effect on RunPod, check before repeating it"
        raise TransientError(
            self._scrub(f"failed after {self.max_retries + 1} attempts: {last_msg}"),
            status=last_status, request_id=last_rid, operation=operation, hint=hint,
        )

    def _rest(self, method: str, path: str, payload: Any = None, *, operation: str,
              on_ambiguous: Callable[[], Any] | None = None) -> Any:
        """REST v2 call; returns parsed JSON (None for 204) or the _Resolved value."""
        reply = self._call(method, self.rest_url + path, payload, operation=operation, on_ambiguous=on_ambiguous)
        if isinstance(reply, _Resolved):
            return reply.value
        if 200 <= reply.status < 300:
            return reply.json()
        raise self._rest_error(reply, operation)

    def _rest_error(self, reply: _Reply, operation: str) -> RunPodError:
        msg = self._scrub(_reply_message(reply) or f"HTTP {reply.status}")
        kw = dict(status=reply.status, request_id=reply.request_id, operation=operation)
        if reply.status in (401, 403):
            return AuthError(msg, hint=_HINT_AUTH, **kw)
        if reply.status == 404:
            return NotFound(msg, **kw)
        if reply.status == 402:
            return RunPodError(msg, hint=_HINT_BALANCE, **kw)
        if reply.status == 409:
            return InvalidAction(msg, **kw)
        if reply.status == 422:
            return RunPodError(msg, hint="the request body was rejected; this is a bug in the client or a RunPod API change", **kw)
        cls = _classify(msg)
        if cls is NotFound and reply.status == 400:
            cls = RunPodError   # a 400 mentioning "not found" is a rule violation, not a missing target
        return cls(msg, hint=_HINTS.get(cls), **kw)

    def _graphql(self, query: str, variables: Mapping[str, Any], *, operation: str, spot_op: bool = False,
                 on_ambiguous: Callable[[], Any] | None = None) -> Any:
        """GraphQL call; returns `data` (or the _Resolved value). Errors arrive inside HTTP 200."""
        payload = {"query": query, "variables": dict(variables)}
        reply = self._call("POST", self.graphql_url, payload, operation=operation, on_ambiguous=on_ambiguous)
        if isinstance(reply, _Resolved):
            return reply.value
        kw = dict(status=reply.status, request_id=reply.request_id, operation=operation)
        if reply.status in (401, 403):
            return_msg = self._scrub(_reply_message(reply) or "unauthorized")
            raise AuthError(return_msg, hint=_HINT_AUTH, **kw)
        doc = reply.json()
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if errors:
            msgs = []
            for e in errors:
                if isinstance(e, dict):
                    m = str(e.get("message") or "")
                    code = (e.get("extensions") or {}).get("code") if isinstance(e.get("extensions"), dict) else None
                    msgs.append(m + (f" [{code}]" if code == "GRAPHQL_VALIDATION_FAILED" else ""))
                else:
                    msgs.append(str(e))
            msg = self._scrub("; ".join(m for m in msgs if m) or "GraphQL error")
            cls = _classify(msg, spot_op=spot_op)
            raise cls(msg, hint=_HINTS.get(cls), **kw)
        if reply.status != 200 or not isinstance(doc, dict) or "data" not in doc:
            msg = self._scrub(_reply_message(reply) or f"unexpected GraphQL answer (HTTP {reply.status})")
            raise RunPodError(msg, **kw)
        return doc["data"] or {}

    # ------------------------------------------------------------ pods
    def get_pod(self, pod_id: str, *, with_history: bool = False) -> Pod:
        """REST v2 GET /v2/pods/{id}; with_history adds GraphQL lastStatusChange/podType. Raises NotFound."""
        _require_id(pod_id, "pod id")
        data = self._rest("GET", f"/v2/pods/{quote(pod_id, safe='')}", operation="get pod")
        pod = _pod_from_v2(data)
        if with_history:
            pod = self._add_history(pod)
        return pod

    def _add_history(self, pod: Pod) -> Pod:
        data = self._graphql(_Q_POD, {"podId": pod.id}, operation="pod history (GraphQL pod)")
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

    def find_pod(self, pod_id: str, *, with_history: bool = False) -> Pod | None:
        """Like get_pod, None when the pod is gone."""
        try:
            return self.get_pod(pod_id, with_history=with_history)
        except NotFound:
            return None

    def list_pods(self, *, name: str | None = None) -> list[Pod]:
        """REST v2 GET /v2/pods (terminated pods are not listed); optionally only those named `name`."""
        data = self._rest("GET", "/v2/pods", operation="list pods") or {}
        pods = [_pod_from_v2(p) for p in data.get("pods", [])]
        return [p for p in pods if name is None or p.name == name]

    def _new_pod_named(self, name: str, before: set[str]) -> Pod | None:
        fresh = [p for p in self.list_pods(name=name) if p.id not in before]
        if not fresh:
            return None
        return max(fresh, key=lambda p: p.created_at or "")

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
        if spec.volume_id:
            inp["networkVolumeId"] = spec.volume_id
            inp["volumeMountPath"] = spec.volume_mount_path
        before = {p.id for p in self.list_pods(name=spec.name)}
        result = self._graphql(
            _M_RENT_SPOT, {"input": inp}, operation="create spot pod (podRentInterruptable)", spot_op=True,
            on_ambiguous=lambda: self._new_pod_named(spec.name, before),
        )
        if isinstance(result, Pod):
            return dataclasses.replace(result, interruptible=True)
        g = (result or {}).get("podRentInterruptable")
        if not g or not g.get("id"):
            raise NoCapacity("podRentInterruptable returned no pod", operation="create spot pod", hint=_HINT_CAPACITY)
        try:
            pod = self.get_pod(g["id"])
        except NotFound:   # v2 may lag right after a GraphQL create
            pod = Pod(id=g["id"], name=spec.name, status=PROVISIONING, desired_status=g.get("desiredStatus"),
                      interruptible=True, gpu_type=spec.gpu_type, gpu_count=spec.gpu_count,
                      cost_per_hr=float(g.get("costPerHr") or 0.0), data_center=spec.data_center,
                      volume_id=spec.volume_id, ssh=None, last_status_change=None, started_at=None,
                      image=spec.image)
        return dataclasses.replace(
            pod, interruptible=True, desired_status=g.get("desiredStatus") or pod.desired_status,
            last_status_change=g.get("lastStatusChange"), pod_type=g.get("podType"),
        )

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
        if spec.volume_id:
            body["mounts"] = {"network": [{"volumeId": spec.volume_id, "path": spec.volume_mount_path}]}
        before = {p.id for p in self.list_pods(name=spec.name)}
        result = self._rest("POST", "/v2/pods", body, operation="create on-demand pod",
                            on_ambiguous=lambda: self._new_pod_named(spec.name, before))
        pod = result if isinstance(result, Pod) else _pod_from_v2(result)
        return dataclasses.replace(pod, interruptible=False)

    def _booting(self, pod_id: str) -> Pod | None:
        pod = self.find_pod(pod_id)
        return pod if pod is not None and pod.status in BOOTING_STATES else None

    def resume_spot_pod(self, pod_id: str, bid_per_gpu: float, gpu_count: int) -> None:
        """GraphQL podBidResume (gpuCount is required by RunPod)."""
        _require_id(pod_id, "pod id")
        if not (isinstance(bid_per_gpu, (int, float)) and bid_per_gpu > 0):
            raise ValueError(f"bid_per_gpu must be a positive price in $/GPU-hour, got {bid_per_gpu!r}")
        if not (isinstance(gpu_count, int) and gpu_count >= 1):
            raise ValueError(f"gpu_count must be a positive integer, got {gpu_count!r}")
        self._graphql(
            _M_BID_RESUME, {"podId": pod_id, "bidPerGpu": float(bid_per_gpu), "gpuCount": gpu_count},
            operation="resume spot pod (podBidResume)", spot_op=True,
            on_ambiguous=lambda: self._booting(pod_id),
        )

    def _action(self, pod_id: str, action: str, *, on_ambiguous: Callable[[], Any]) -> Any:
        _require_id(pod_id, "pod id")
        return self._rest("POST", f"/v2/pods/{quote(pod_id, safe='')}/action", {"action": action},
                          operation=f"{action} pod", on_ambiguous=on_ambiguous)

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
        self._rest("DELETE", f"/v2/pods/{quote(pod_id, safe='')}", operation="terminate pod",
                   on_ambiguous=lambda: True if self.find_pod(pod_id) is None else None)

    def spot_price(self, gpu_type: str, gpu_count: int, data_center: str | None) -> SpotPrice:
        """GraphQL gpuTypes { lowestPrice { minimumBidPrice … } }.

        Prices are per GPU-hour (RunPod quotes minimumBidPrice per GPU; bidPerGpu is per GPU).
        """
        if not (isinstance(gpu_count, int) and gpu_count >= 1):
            raise ValueError(f"gpu_count must be a positive integer, got {gpu_count!r}")
        variables = {"id": gpu_type, "gpuCount": gpu_count, "dc": data_center}
        try:
            data = self._graphql(_Q_SPOT_PRICE, variables, operation="spot price (gpuTypes.lowestPrice)",
                                 spot_op=True)
        except SpotUnavailable:
            # Spot withdrawn: minimumBidPrice is gone with it, but the on-demand price still answers,
            # and a caller falling back to on-demand needs exactly that.
            data = self._graphql(_Q_ON_DEMAND_PRICE, variables, operation="on-demand price (gpuTypes)")
        types = data.get("gpuTypes") or []
        match = next((t for t in types if isinstance(t, dict) and t.get("id") == gpu_type), None)
        if match is None:
            raise NotFound(f"unknown GPU type {gpu_type!r}", operation="spot price",
                           hint="use a RunPod GPU type id such as 'NVIDIA GeForce RTX 4090'")
        lowest = match.get("lowestPrice") or {}
        on_demand = lowest.get("uninterruptablePrice")
        if on_demand is None:
            on_demand = match.get("securePrice")
        return SpotPrice(
            minimum_bid_per_gpu=_float_or_none(lowest.get("minimumBidPrice")),
            on_demand_price_per_gpu=_float_or_none(on_demand),
            stock_status=lowest.get("stockStatus"),
        )

    # network volumes --------------------------------------------------
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

        result = self._rest("POST", "/v2/network-volumes", {"name": name, "size": size_gb, "dataCenter": data_center},
                            operation="create network volume", on_ambiguous=created)
        return result if isinstance(result, NetworkVolume) else _volume_from_v2(result)

    def get_network_volume(self, volume_id: str) -> NetworkVolume:
        _require_id(volume_id, "volume id")
        return _volume_from_v2(self._rest("GET", f"/v2/network-volumes/{quote(volume_id, safe='')}",
                                          operation="get network volume"))

    def find_network_volume(self, volume_id: str) -> NetworkVolume | None:
        try:
            return self.get_network_volume(volume_id)
        except NotFound:
            return None

    def list_network_volumes(self) -> list[NetworkVolume]:
        data = self._rest("GET", "/v2/network-volumes", operation="list network volumes") or {}
        return [_volume_from_v2(v) for v in data.get("networkVolumes", [])]

    def update_network_volume(self, volume_id: str, *, name: str | None = None, size_gb: int | None = None) -> NetworkVolume:
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
        return _volume_from_v2(self._rest("PATCH", f"/v2/network-volumes/{quote(volume_id, safe='')}", body,
                                          operation="update network volume"))

    def delete_network_volume(self, volume_id: str) -> None:
        """Raises VolumeInUse while a pod uses it, NotFound when already gone."""
        _require_id(volume_id, "volume id")
        self._rest("DELETE", f"/v2/network-volumes/{quote(volume_id, safe='')}", operation="delete network volume",
                   on_ambiguous=lambda: True if self.find_network_volume(volume_id) is None else None)


# ---------------------------------------------------------------- helpers
def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    return float(int(value)) if value.isdigit() else None


def _reply_message(reply: _Reply) -> str:
    """The server's explanation: problem+json detail/errors, v1 message/error, GraphQL errors, or raw text."""
    doc = reply.json()
    if isinstance(doc, dict):
        parts: list[str] = []
        for k in ("detail", "message", "error"):
            if isinstance(doc.get(k), str) and doc[k]:
                parts.append(doc[k])
                break
        if not parts and isinstance(doc.get("title"), str):
            parts.append(doc["title"])
        errs = doc.get("errors")
        if isinstance(errs, list):
            for e in errs:
                text = e.get("message") if isinstance(e, dict) else e
                if isinstance(text, str) and text and text not in parts:
                    parts.append(text)
        return "; ".join(parts)
    text = reply.body.decode("utf-8", "replace").strip()
    return text[:300]


def _require_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a {what} is required")


def _validate_size(size_gb: Any) -> None:
    if not isinstance(size_gb, int) or isinstance(size_gb, bool) or not 10 <= size_gb <= 4096:
        raise ValueError(f"network volume size must be an integer between 10 and 4096 GB, got {size_gb!r}")


_DC_RE = re.compile(r"^[A-Z]{2,4}-[A-Z]{2,4}-\d+$")   # Secure Cloud ids: EU-RO-1, US-KS-2, EUR-IS-1, CA-MTL-1


def _validate_spec(spec: PodSpec) -> None:
    if not spec.name:
        raise ValueError("a pod needs a name")
    if not spec.image:
        raise ValueError("a pod needs a container image")
    if not spec.gpu_type:
        raise ValueError("a pod needs a GPU type (e.g. 'NVIDIA GeForce RTX 4090')")
    if not isinstance(spec.gpu_count, int) or spec.gpu_count < 1:
        raise ValueError(f"gpu_count must be a positive integer, got {spec.gpu_count!r}")
    if not isinstance(spec.container_disk_gb, int) or spec.container_disk_gb < 1:
        raise ValueError(f"container_disk_gb must be a positive integer, got {spec.container_disk_gb!r}")
    if spec.volume_id and spec.cloud_type != "SECURE":
        raise ValueError("network volumes only work in RunPod's Secure Cloud: set cloud_type to SECURE")
    if spec.volume_id and not spec.data_center:
        raise ValueError("a pod with a network volume must be placed in the volume's data center")
    if spec.data_center and not _DC_RE.match(spec.data_center):
        raise ValueError(f"data center {spec.data_center!r} is not a Secure Cloud id like 'EU-RO-1' (upper case)")


def _float_or_none(v: Any) -> float | None:
    return None if v is None else float(v)


def _interruptible_from_pod_type(pod_type: str | None) -> bool | None:
    # Which podType a spot pod reports is UNCONFIRMED; INTERRUPTABLE is presumed, BID accepted too.
    if pod_type in ("INTERRUPTABLE", "BID"):
        return True
    if pod_type == "RESERVED":
        return False
    return None


def _ssh_from_v2(data: Mapping[str, Any]) -> SshEndpoint | None:
    direct = ((data.get("ssh") or {}).get("direct")) or None
    if isinstance(direct, dict) and direct.get("host") and direct.get("port"):
        return SshEndpoint(str(direct["host"]), int(direct["port"]), str(direct.get("username") or "root"))
    runtime = data.get("runtime") or {}
    for p in runtime.get("ports") or []:
        if p.get("private") == 22 and p.get("type") == "tcp" and p.get("ip") and p.get("public"):
            return SshEndpoint(str(p["ip"]), int(p["public"]), "root")
    return None


def _pod_from_v2(data: Mapping[str, Any]) -> Pod:
    if not isinstance(data, Mapping) or not data.get("id"):
        raise RunPodError("unexpected pod object from RunPod REST v2", operation="parse pod")
    status = str(data.get("status") or "")
    gpu = data.get("gpu") or {}
    network = ((data.get("mounts") or {}).get("network")) or []
    running = status == RUNNING
    return Pod(
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        status=status,
        desired_status=None,
        interruptible=None,
        gpu_type=gpu.get("id"),
        gpu_count=int(gpu.get("count") or 0),
        cost_per_hr=float(data.get("cost") or 0.0),
        data_center=data.get("dataCenterId"),
        volume_id=network[0].get("volumeId") if network else None,
        ssh=_ssh_from_v2(data) if running else None,   # runtime can be stale unless RUNNING
        last_status_change=None,
        started_at=data.get("startedAt"),
        image=data.get("image"),
        created_at=data.get("createdAt"),
    )


def _volume_from_v2(data: Mapping[str, Any]) -> NetworkVolume:
    if not isinstance(data, Mapping) or not data.get("id"):
        raise RunPodError("unexpected network volume object from RunPod REST v2", operation="parse volume")
    return NetworkVolume(
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        size_gb=int(data.get("size") or 0),
        data_center=str(data.get("dataCenter") or ""),
        type=str(data.get("type") or "STANDARD"),
    )


__all__ = [n for n in dir() if not n.startswith("_") and n not in {
    "annotations", "os", "dataclasses", "http", "json", "re", "ssl", "time", "dataclass", "field",
    "Any", "Callable", "Mapping", "quote", "urlsplit"}]
