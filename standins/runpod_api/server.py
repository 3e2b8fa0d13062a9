"""The fake RunPod API as a real HTTP server on 127.0.0.1, plus the test-control surface.

FakeRunPod is what the `fake_runpod` fixture yields; the same controls are served over HTTP under
/_fake/ for subprocesses (see docs/internals/runpod-api.md, "The fake RunPod API").
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import graphql as g
from .gql_api import GraphQLApi
from .rest import Auth, RestApi, route
from .spec import SpecValidator
from .state import MSG_NO_CAPACITY, MSG_NOT_ENOUGH_GPUS, TITLES, ApiError, FakePod, FakeState, FakeVolume, GpuPrice

INJECTABLE = {
    "no_capacity",  # capacity error text (REST 400 detail / GraphQL errors)
    "not_enough_gpus_on_host",  # "There are not enough free GPUs on the host machine…"
    "transient",  # 502, nothing done
    "unavailable",  # 503, nothing done
    "rate_limit",  # 429 + Retry-After, nothing done
    "drop_before",  # connection closed without an answer, nothing done
    "timeout",  # no answer for `hang_seconds`, then closed; nothing done
    "drop_after",  # the operation IS performed, then the connection is closed unanswered
    "server_error_after",  # the operation IS performed, then 500
    "auth",  # 401
}
_AFTER = {"drop_after", "server_error_after"}
BILLABLE_GRAPHQL = {"podRentInterruptable", "podFindAndDeployOnDemand", "podBidResume", "podResume"}


@dataclass
class FakeRequest:
    method: str
    path: str
    operation: str | None  # GraphQL root field(s), comma-joined; None for REST
    time: float
    status: int | None = None  # None: connection dropped without an answer
    action: str | None = None  # REST pod action (start/stop/…)
    auth: str | None = None  # "account" | "pod:<id>" | None (rejected)
    billable: bool = False
    request_id: str = ""
    injected: str | None = None


@dataclass
class Injection:
    operation: str
    error: str
    count: int = 1
    retry_after: int = 1
    message: str | None = None  # for no_capacity: RunPod's text to answer with (default MSG_NO_CAPACITY)

    def matches(self, method: str, path: str, roots: list[str]) -> bool:
        if self.operation.startswith("rest:"):
            return fnmatch.fnmatchcase(f"{method} {path}", self.operation[len("rest:") :].strip())
        return self.operation in roots


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) overflows when tests fire 20 requests at once on a loaded machine:
    # connections then wait a SYN retransmit (1 s) or are reset. RunPod's front door does not do that.
    request_queue_size = 128


# Requests whose User-Agent starts with this come from the project's own client (backends/runpod/client.py):
# they are held to the strict request schemas, with no allowance for other clients' extra fields.
OUR_USER_AGENT = "runpod-trainer/"


def _query(raw: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _fast_sleep(seconds: float) -> None:
    time.sleep(min(seconds, 0.01))


def _pod_summary(p: FakePod) -> dict:
    d = {k: v for k, v in asdict(p).items() if k not in ("boot_started", "started_mono", "started_dt")}
    d.update(status=p.status, cost_per_hr=p.cost_per_hr, desired_status=p.desired_status)
    return d


class FakeRunPod:
    """A fake RunPod account served over HTTP. Thread-safe: one lock (state.lock) guards everything."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        boot_seconds: float = 0.2,
        ssh_host: str = "127.0.0.1",
        ssh_ports: list[int] | None = None,
        hang_seconds: float = 1.0,
        spec_check: bool = False,
    ):
        """spec_check: hold every REST v2 request and answer to RunPod's published spec (spec.py, needs
        jsonschema from the test extra); what does not match is recorded in `violations`."""
        self.api_key = api_key or "rpa_fake_" + secrets.token_hex(16)
        self.state = FakeState(boot_seconds=boot_seconds, ssh_host=ssh_host, ssh_ports=ssh_ports)
        self.rest = RestApi(self.state)
        self.gql = GraphQLApi(self.state)
        self.hang_seconds = hang_seconds
        self._requests: list[FakeRequest] = []
        self._injections: list[Injection] = []
        self.violations: list[str] = []
        self.spec = SpecValidator() if spec_check else None
        self._server = _Server((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> FakeRunPod:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-runpod", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeRunPod:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def rest_url(self) -> str:
        return self.url

    @property
    def graphql_url(self) -> str:
        return self.url + "/graphql"

    def env(self) -> dict[str, str]:
        return {
            "RUNPOD_API_KEY": self.api_key,
            "RUNPOD_REST_URL": self.rest_url,
            "RUNPOD_GRAPHQL_URL": self.graphql_url,
        }

    def client(self, **kw):
        """A RunPodClient pointed at this fake, with near-instant retry sleeps."""
        from backends.runpod.client import RunPodClient

        kw.setdefault("timeout", 5.0)
        kw.setdefault("sleep", _fast_sleep)
        return RunPodClient(self.api_key, rest_url=self.rest_url, graphql_url=self.graphql_url, **kw)

    # ---------------------------------------------------------------- state views
    @property
    def pods(self) -> dict[str, FakePod]:
        """Every pod ever created (terminated ones keep status TERMINATED); values are live objects."""
        with self.state.lock:
            return dict(self.state.pods)

    @property
    def volumes(self) -> dict[str, FakeVolume]:
        with self.state.lock:
            return dict(self.state.volumes)

    def live_pods(self) -> list[FakePod]:
        return self.state.live_pods()

    @property
    def requests(self) -> list[FakeRequest]:
        with self.state.lock:
            return list(self._requests)

    def billable_calls(self) -> list[FakeRequest]:
        """Calls that create/start/resume pods or create volumes (whatever their outcome)."""
        return [r for r in self.requests if r.billable]

    def clear_requests(self) -> None:
        with self.state.lock:
            self._requests.clear()

    # ---------------------------------------------------------------- controls
    @property
    def boot_seconds(self) -> float:
        return self.state.boot_seconds

    @boot_seconds.setter
    def boot_seconds(self, value: float) -> None:
        with self.state.lock:
            self.state.boot_seconds = float(value)

    def set_pod_ssh_target(self, pod_id: str, host: str, ports: list[int]) -> None:
        self.state.set_pod_ssh_target(pod_id, host, ports)

    def set_ssh_target(self, host: str, ports: list[int]) -> None:
        self.state.set_ssh_target(host, ports)

    def inject(
        self, operation: str, error: str, count: int = 1, *, retry_after: int = 1, message: str | None = None
    ) -> None:
        if error not in INJECTABLE:
            raise ValueError(f"unknown injectable error {error!r}; one of {sorted(INJECTABLE)}")
        if message is not None and error != "no_capacity":
            raise ValueError("only no_capacity takes a message")
        with self.state.lock:
            self._injections.append(Injection(operation, error, int(count), int(retry_after), message))

    def clear_injections(self) -> None:
        with self.state.lock:
            self._injections.clear()

    def remove_spot(self) -> None:
        """podRentInterruptable/podBidResume/minimumBidPrice vanish from the schema."""
        with self.state.lock:
            self.state.spot_enabled = False

    def restore_spot(self) -> None:
        with self.state.lock:
            self.state.spot_enabled = True

    def refuse_pod_key_stops(self) -> None:
        """REST v2 answers a pod's stop of itself with its pod-scoped key 403 (assumption 8 refuted)."""
        with self.state.lock:
            self.state.pod_key_may_stop = False

    def retire_graphql(self) -> None:
        """ "GraphQL retired" mode: every /graphql request answers 410 Gone; REST v2 is untouched."""
        with self.state.lock:
            self.state.graphql_retired = True

    def restore_graphql(self) -> None:
        with self.state.lock:
            self.state.graphql_retired = False

    @property
    def volume_in_use_status(self) -> int:
        return self.state.volume_in_use_status

    @volume_in_use_status.setter
    def volume_in_use_status(self, value: int) -> None:
        with self.state.lock:
            self.state.volume_in_use_status = int(value)

    @property
    def page_size(self) -> int:
        return self.state.page_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        with self.state.lock:
            self.state.page_size = max(1, int(value))

    def set_stock(self, gpu_type: str, data_centers: list[str]) -> None:
        """The data centers that have this GPU type (v2 catalog availability, create placement)."""
        with self.state.lock:
            self.state.prices[gpu_type].data_centers = list(data_centers)

    def set_gpu_use(self, pod_id: str, gpus: list[tuple[int, int]] | None) -> None:
        """What REST v2 reports of the pod's GPUs from now on (runtime.gpus[]): [(util %, memory %)] per GPU;
        None: no gpus in runtime (the API did not report them)."""
        with self.state.lock:
            self.state.pods[pod_id].gpu_use = [(int(u), int(m)) for u, m in gpus] if gpus is not None else None

    def hide_runtime(self, pod_id: str, hidden: bool = True) -> None:
        """The pod's answers leave `runtime` out (null) while it runs, as RunPod's sometimes do."""
        with self.state.lock:
            self.state.pods[pod_id].runtime_hidden = hidden

    def backdate_billing(self, pod_id: str, seconds: float) -> None:
        """The pod's current (or last) stretch of running, as billing counts it, began `seconds` earlier:
        a run long enough to cost something, without waiting for it."""
        with self.state.lock:
            self.state.pods[pod_id].billing[-1][0] -= float(seconds)

    def billed(self, pod_id: str) -> float:
        """What the fake has billed the pod so far (what GET /v2/billing/pods sums to), USD."""
        from .billing import pod_billing

        with self.state.lock:
            answer = pod_billing([self.state.pods[pod_id]], {"podId": pod_id, "bucketSize": "hour"})
        return answer["metadata"]["totals"]["totalAmount"]

    def preempt(self, pod_id: str, terminate: bool = False) -> FakePod:
        return self.state.preempt(pod_id, terminate=terminate)

    def platform_stop(self, pod_id: str, *, reason: str = "Exited by RunPod", error: bool = False) -> FakePod:
        return self.state.platform_stop(pod_id, reason=reason, error=error)

    def add_pod(self, **kw) -> FakePod:
        return self.state.add_pod(**kw)

    def add_volume(self, **kw) -> FakeVolume:
        return self.state.add_volume(**kw)

    def set_price(
        self,
        gpu_type: str,
        *,
        minimum_bid: float | None = None,
        on_demand: float | None = None,
        stock: str | None = None,
        spot: float | None = None,
    ) -> None:
        with self.state.lock:
            p = self.state.prices.get(gpu_type) or GpuPrice(gpu_type, 0.5, 0.25, 0.2)
            if minimum_bid is not None:
                p.minimum_bid = minimum_bid
            if on_demand is not None:
                p.on_demand = on_demand
            if stock is not None:
                p.stock = stock
            if spot is not None:
                p.spot = spot
            self.state.prices[gpu_type] = p

    def pod_api_key(self, pod_id: str) -> str:
        return self.state.pods[pod_id].api_key

    def rp_environment(self, pod_id: str) -> dict[str, str]:
        with self.state.lock:
            return self.state.pods[pod_id].rp_environment()

    @contextmanager
    def off_spec(self) -> Iterator[list[str]]:
        """For a test that breaks RunPod's spec on purpose: the spec violations recorded inside are taken
        out of `violations` (and yielded); none at all is an error (the break was not noticed)."""
        with self.state.lock:
            before = len(self.violations)
        found: list[str] = []
        yield found
        with self.state.lock:
            found.extend(self.violations[before:])
            del self.violations[before:]
        if self.spec is not None and not any(v.startswith("spec: ") for v in found):
            raise AssertionError("the request was meant to break RunPod's spec, but nothing was recorded")

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

    # ---------------------------------------------------------------- request plumbing (handler side)
    def _known_keys(self) -> list[str]:
        return [self.api_key] + [p.api_key for p in self.state.pods.values()]

    def _authenticate(self, header: str | None) -> Auth | None:
        if not header or not header.startswith("Bearer "):
            return None
        token = header[len("Bearer ") :].strip()
        if secrets.compare_digest(token, self.api_key):
            return Auth("account")
        for p in self.state.pods.values():
            if not p.terminated and secrets.compare_digest(token, p.api_key):
                return Auth("pod", p.id)
        return None

    def _take_injection(self, method: str, path: str, roots: list[str]) -> Injection | None:
        for inj in self._injections:
            if inj.count > 0 and inj.matches(method, path, roots):
                inj.count -= 1
                if inj.count == 0:
                    self._injections.remove(inj)
                return inj
        return None

    def _control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p][1:]  # drop "_fake"
        b = body if isinstance(body, dict) else {}
        try:
            if method == "GET" and parts == ["state"]:
                with self.state.lock:
                    return 200, {
                        "pods": {k: _pod_summary(p) for k, p in self.state.pods.items()},
                        "volumes": {k: asdict(v) for k, v in self.state.volumes.items()},
                        "boot_seconds": self.state.boot_seconds,
                        "spot_enabled": self.state.spot_enabled,
                        "graphql_retired": self.state.graphql_retired,
                        "page_size": self.state.page_size,
                        "violations": list(self.violations),
                    }
            if method == "GET" and parts == ["requests"]:
                return 200, [asdict(r) for r in self.requests]
            if method == "GET" and parts == ["billable"]:
                return 200, [asdict(r) for r in self.billable_calls()]
            if method == "GET" and len(parts) == 3 and parts[0] == "pods" and parts[2] == "api_key":
                return 200, {"api_key": self.pod_api_key(parts[1])}
            if method == "GET" and len(parts) == 3 and parts[0] == "pods" and parts[2] == "rp_environment":
                return 200, self.rp_environment(parts[1])
            if method != "POST":
                return 404, {"error": f"unknown control {method} {path}"}
            cmd = parts[0] if parts else ""
            if cmd == "ssh_target":
                self.set_ssh_target(b["host"], b["ports"])
            elif cmd == "boot_seconds":
                self.boot_seconds = float(b["seconds"])
            elif cmd == "inject":
                self.inject(
                    b["operation"],
                    b["error"],
                    int(b.get("count", 1)),
                    retry_after=int(b.get("retry_after", 1)),
                    message=b.get("message"),
                )
            elif cmd == "clear_injections":
                self.clear_injections()
            elif cmd == "remove_spot":
                self.remove_spot()
            elif cmd == "restore_spot":
                self.restore_spot()
            elif cmd == "refuse_pod_key_stops":
                self.refuse_pod_key_stops()
            elif cmd == "retire_graphql":
                self.retire_graphql()
            elif cmd == "restore_graphql":
                self.restore_graphql()
            elif cmd == "page_size":
                self.page_size = int(b["size"])
            elif cmd == "set_stock":
                self.set_stock(b["gpu_type"], list(b["data_centers"]))
            elif cmd == "gpu_use":
                gpus = b.get("gpus")
                self.set_gpu_use(b["pod_id"], [tuple(g) for g in gpus] if gpus is not None else None)
            elif cmd == "hide_runtime":
                self.hide_runtime(b["pod_id"], bool(b.get("hidden", True)))
            elif cmd == "preempt":
                return 200, _pod_summary(self.preempt(b["pod_id"], bool(b.get("terminate", False))))
            elif cmd == "platform_stop":
                return 200, _pod_summary(
                    self.platform_stop(
                        b["pod_id"], reason=b.get("reason", "Exited by RunPod"), error=bool(b.get("error", False))
                    )
                )
            elif cmd == "add_pod":
                return 200, _pod_summary(self.add_pod(**b))
            elif cmd == "add_volume":
                return 200, asdict(self.add_volume(**b))
            elif cmd == "set_price":
                self.set_price(b.pop("gpu_type"), **b)
            elif cmd == "clear_requests":
                self.clear_requests()
            else:
                return 404, {"error": f"unknown control {path}"}
            return 200, {"ok": True}
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"error": f"{exc.__class__.__name__}: {exc}"}


def _make_handler(fake: FakeRunPod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeRunPod/1.0"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def do_PUT(self) -> None:
            self._handle("PUT")

        # ------------------------------------------------------------
        def _send(
            self,
            status: int,
            body: Any,
            *,
            rid: str,
            content_type: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            self._check_answer(status, body)
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("x-request-id", rid)
            if body is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if data:
                self.wfile.write(data)

        def _check_answer(self, status: int, body: Any) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path)
            if fake.spec is None or not path.startswith("/v2/"):
                return
            problems = fake.spec.response(self.command, path, status, body)
            if problems:
                with fake.state.lock:
                    fake.violations.extend(f"spec: {p}" for p in problems)

        def _check_request(self, path: str, query: dict[str, str], body: Any) -> None:
            if fake.spec is None:
                return
            ours = (self.headers.get("User-Agent") or "").startswith(OUR_USER_AGENT)
            problems = fake.spec.request(self.command, path, query, body, ours=ours)
            if problems:
                with fake.state.lock:
                    fake.violations.extend(f"spec: {p}" for p in problems)

        def _problem(self, exc: ApiError, rid: str, headers: dict[str, str] | None = None) -> None:
            body: dict[str, Any] = {"title": exc.title, "status": exc.status, "detail": exc.detail}
            if exc.errors:
                body["errors"] = exc.errors
            self._send(exc.status, body, rid=rid, content_type="application/problem+json", headers=headers)

        def _handle(self, method: str) -> None:
            rid = "req_" + secrets.token_hex(8)
            split = urlsplit(self.path)
            path = unquote(split.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            bad_json = False
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    bad_json = True

            if path.startswith("/_fake/"):
                status, out = fake._control(method, path, body)
                self._send(status, out, rid=rid)
                return

            is_graphql = path == "/graphql"
            record = FakeRequest(method, path, None, time.time(), request_id=rid)
            with fake.state.lock:
                fake._requests.append(record)
                keys = fake._known_keys()
            # The key must only ever travel in the Authorization header.
            if "api_key" in parse_qs(split.query) or any(k and k in self.path for k in keys):
                with fake.state.lock:
                    fake.violations.append(f"API key in the URL of {method} {path}")
                record.status = 401
                self._problem(ApiError(401, "API keys are not accepted in the URL; use the Authorization header"), rid)
                return

            roots: list[str] = []
            handler_name = params = None
            try:
                if is_graphql and fake.state.graphql_retired:
                    # RunPod's announced retirement: the endpoint answers 410 Gone, whatever is asked.
                    raise ApiError(
                        410, "The GraphQL API has been retired. Use the REST API v2: https://api.runpod.io/v2"
                    )
                if bad_json:
                    raise ApiError(400, "request body is not valid JSON")
                if is_graphql:
                    if method != "POST":
                        raise ApiError(405, "GraphQL requests must be POSTed")
                    try:
                        ops = g.parse(body.get("query", "")) if isinstance(body, dict) else []
                        roots = [f.name for f in ops[0].selections] if ops else []
                    except g.GraphQLSyntaxError:
                        roots = []
                    record.operation = ",".join(roots) or None
                    record.billable = bool(BILLABLE_GRAPHQL & set(roots))
                else:
                    handler_name, params = route(method, path)
                    self._check_request(path, _query(split.query), body)
                    if handler_name == "pod_action" and isinstance(body, dict):
                        record.action = str(body.get("action"))
                        record.billable = record.action in ("start", "restart")
                    record.billable = record.billable or handler_name in ("create_pod", "create_volume")
                with fake.state.lock:
                    auth = fake._authenticate(self.headers.get("Authorization"))
                if auth is None:
                    raise ApiError(
                        401, "missing bearer token" if not self.headers.get("Authorization") else "invalid bearer token"
                    )
                record.auth = "account" if auth.kind == "account" else f"pod:{auth.pod_id}"
            except ApiError as exc:
                record.status = exc.status
                self._problem(exc, rid)
                return

            with fake.state.lock:
                inj = fake._take_injection(method, path, roots)
            if inj is not None:
                record.injected = inj.error
                if inj.error not in _AFTER:
                    self._inject_before(inj, record, rid, is_graphql, roots)
                    return

            rate_headers = {"RateLimit": '"minute";r=59;t=60', "RateLimit-Policy": '"minute";q=60;w=60'}
            with fake.state.lock:
                if is_graphql:
                    status, out, _ = fake.gql.execute(body, auth)
                    result: tuple = (status, out, "application/json")
                else:
                    try:
                        fake.rest.check_pod_key_scope(auth, handler_name, params, body)
                        status, out = fake.rest.dispatch(handler_name, params, body, _query(split.query))
                        result = (status, out, "application/json")
                    except ApiError as exc:
                        result = (exc, None, None)
            if inj is not None:  # the operation was performed; now lose the answer
                if inj.error == "drop_after":
                    record.status = None
                    self.close_connection = True
                    return
                record.status = 500
                self._problem(ApiError(500, "internal server error"), rid)
                return
            if isinstance(result[0], ApiError):
                record.status = result[0].status
                self._problem(result[0], rid, rate_headers)
                return
            record.status = result[0]
            self._send(result[0], result[1], rid=rid, content_type=result[2], headers=rate_headers)

        def _inject_before(
            self, inj: Injection, record: FakeRequest, rid: str, is_graphql: bool, roots: list[str]
        ) -> None:
            if inj.error in ("drop_before", "timeout"):
                if inj.error == "timeout":
                    time.sleep(fake.hang_seconds)
                record.status = None
                self.close_connection = True
                return
            if inj.error in ("no_capacity", "not_enough_gpus_on_host"):
                msg = (inj.message or MSG_NO_CAPACITY) if inj.error == "no_capacity" else MSG_NOT_ENOUGH_GPUS
                if is_graphql:
                    record.status = 200
                    root = roots[0] if roots else None
                    self._send(
                        200,
                        {
                            "errors": [{"message": msg, "path": [root], "extensions": {"code": "RUNPOD"}}],
                            "data": {root: None} if root else None,
                        },
                        rid=rid,
                    )
                else:
                    record.status = 400
                    self._problem(ApiError(400, msg), rid)
                return
            status, headers, detail = {
                "transient": (502, None, "upstream connect error or disconnect/reset before headers"),
                "unavailable": (503, None, "service temporarily unavailable"),
                "rate_limit": (429, {"Retry-After": str(inj.retry_after)}, "rate limit exceeded"),
                "auth": (401, None, "invalid bearer token"),
            }[inj.error]
            record.status = status
            self._problem(ApiError(status, detail, title=TITLES.get(status)), rid, headers)

    return Handler
