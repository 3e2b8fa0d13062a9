"""RunPodClient: configuration, key hygiene, and the transport with retries under every RunPod call.

Which API for what (docs/internals/runpod-api.md says why):
- REST v2 (``$RUNPOD_REST_URL/v2/...``): read/list pods (every cursor page), on-demand create,
  start/stop, terminate, network volumes (create/read/update/delete), the on-demand price and stock
  (the GPU catalog).
- GraphQL (``$RUNPOD_GRAPHQL_URL``), only where v2 has nothing: spot create (podRentInterruptable),
  spot resume (podBidResume), the minimum spot bid (gpuTypes.lowestPrice.minimumBidPrice) and the
  pod history fields lastStatusChange/podType (``get_pod(with_history=True)``, which returns the v2
  pod alone when GraphQL is gone). GraphQL gone (410, or 404/405) is GraphQLGone, a SpotUnavailable.

Transport is stdlib ``http.client``, one connection per call; the client object holds only plain
values, so it can be created anywhere (a Pulumi dynamic provider included) and pickled. The API key
travels only in the Authorization header; it is never put in a URL, a message, a repr or a pickle.

The package's modules (backends/runpod/__init__.py says where each job is) are imported from where
they are defined; this one holds only the client and its settings.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from backends.plain_http import plain_http_elsewhere
from backends.runpod.errors import (
    _HINT_RATE,
    _HINT_TRANSIENT,
    AuthError,
    InvalidAction,
    RateLimited,
    RunPodError,
    TransientError,
)
from backends.runpod.graphql import GraphQLCalls
from backends.runpod.replies import Reply, graphql_data, parse_retry_after, reply_message, rest_error
from backends.runpod.rest import RestCalls

DEFAULT_REST_URL = "https://api.runpod.io"  # REST v2 paths are /v2/...
DEFAULT_GRAPHQL_URL = "https://api.runpod.io/graphql"
REST_URL_ENV = "RUNPOD_REST_URL"
GRAPHQL_URL_ENV = "RUNPOD_GRAPHQL_URL"
API_KEY_ENV = "RUNPOD_API_KEY"

USER_AGENT = "runpod-trainer/0.1 (+stdlib http.client)"


class _Secret(str):
    """A str whose repr never shows the value (keeps the key out of formatted tracebacks/locals)."""

    def __repr__(self) -> str:
        return "'<redacted>'"


# ---------------------------------------------------------------- transport internals
@dataclass
class _Resolved:
    """An ambiguous failure was resolved by looking at the server's state."""

    value: Any


class _NotSent(Exception):
    """Nothing reached the server (refused, DNS, connect timeout): any call may be retried."""


class _Ambiguous(Exception):
    """The request may have been processed (timeout/reset after sending)."""


def _default_sleep(seconds: float) -> None:
    time.sleep(seconds)


class RunPodClient(RestCalls, GraphQLCalls):
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
            if plain_http_elsewhere(url):
                raise ValueError(
                    f"{url!r} is http:// to another machine: the API key would cross the network in the clear; "
                    f"use https:// (check {REST_URL_ENV} / {GRAPHQL_URL_ENV})"
                )
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = float(backoff_base)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self._sleep_fn = sleep

    @classmethod
    def from_env(cls, api_key: str | None = None, **kw) -> RunPodClient:
        """Key from the argument or RUNPOD_API_KEY; URLs from RUNPOD_REST_URL / RUNPOD_GRAPHQL_URL."""
        key = api_key or os.environ.get(API_KEY_ENV, "")
        if not key.strip():
            raise AuthError(
                f"{API_KEY_ENV} is not set", hint=f"export {API_KEY_ENV}=<your RunPod API key> or put it in .runpod.env"
            )
        kw.setdefault("rest_url", os.environ.get(REST_URL_ENV) or None)
        kw.setdefault("graphql_url", os.environ.get(GRAPHQL_URL_ENV) or None)
        return cls(key, **kw)

    # ------------------------------------------------------------ object hygiene
    def __repr__(self) -> str:
        return f"RunPodClient(rest_url={self.rest_url!r}, graphql_url={self.graphql_url!r}, api_key=<redacted>)"

    __str__ = __repr__

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_api_key"] = None  # never serialise the key (Pulumi state, dill, logs)
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
    def _send(self, method: str, url: str, payload: Any) -> Reply:
        parts = urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        host = parts.hostname
        assert host is not None, url  # __init__ accepts only URLs with a host
        conn = conn_cls(host, parts.port, timeout=self.timeout)
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
                raise RunPodError(
                    f"TLS certificate verification failed for {parts.hostname}: {exc.reason}",
                    hint="check the system CA certificates or the RunPod URL override",
                ) from None
            except OSError as exc:
                raise _NotSent(
                    f"cannot connect to {parts.hostname}:{parts.port or ''}: {exc.__class__.__name__}: {exc}"
                ) from None
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                raise _Ambiguous(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__) from None
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return Reply(resp.status, hdrs, data, hdrs.get("x-request-id"))
        finally:
            conn.close()

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_base * (2**attempt), self.max_backoff)

    def _call(
        self,
        method: str,
        url: str,
        payload: Any,
        *,
        operation: str,
        on_ambiguous: Callable[[], Any] | None = None,
        wait_on_429: bool = True,
    ) -> Reply | _Resolved:
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
                    retry_after = parse_retry_after(reply.headers.get("retry-after"))
                    msg = reply_message(reply) or "Too Many Requests"
                    if final or not wait_on_429 or (retry_after is not None and retry_after > self.max_retry_after):
                        raise RateLimited(
                            self._scrub(msg),
                            retry_after=retry_after,
                            status=429,
                            request_id=reply.request_id,
                            operation=operation,
                            hint=_HINT_RATE,
                        )
                    self._sleep(retry_after if retry_after is not None else delay)
                    continue
                if reply.status < 500:
                    return reply
                last_msg = reply_message(reply) or f"HTTP {reply.status}"
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
            status=last_status,
            request_id=last_rid,
            operation=operation,
            hint=hint,
        )

    def _rest(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        operation: str,
        on_ambiguous: Callable[[], Any] | None = None,
        on_conflict: type[RunPodError] = InvalidAction,
    ) -> Any:
        """REST v2 call; returns parsed JSON (None for 204) or the _Resolved value.

        on_conflict: what a 409 means for this call (the spec: "not valid for the current status";
        for a volume delete, that a pod still uses it)."""
        reply = self._call(method, self.rest_url + path, payload, operation=operation, on_ambiguous=on_ambiguous)
        if isinstance(reply, _Resolved):
            return reply.value
        if 200 <= reply.status < 300:
            return reply.json()
        raise rest_error(reply, operation, on_conflict, scrub=self._scrub)

    def _graphql(
        self,
        query: str,
        variables: Mapping[str, Any],
        *,
        operation: str,
        spot_op: bool = False,
        on_ambiguous: Callable[[], Any] | None = None,
        wait_on_429: bool = True,
    ) -> Any:
        """GraphQL call; returns `data` (or the _Resolved value). Errors arrive inside HTTP 200.

        wait_on_429=False: a 429 raises RateLimited at once (for optional reads, which have a fallback)."""
        payload = {"query": query, "variables": dict(variables)}
        reply = self._call(
            "POST", self.graphql_url, payload, operation=operation, on_ambiguous=on_ambiguous, wait_on_429=wait_on_429
        )
        if isinstance(reply, _Resolved):
            return reply.value
        return graphql_data(reply, operation, spot_op=spot_op, scrub=self._scrub)


__all__ = [
    "API_KEY_ENV",
    "DEFAULT_GRAPHQL_URL",
    "DEFAULT_REST_URL",
    "GRAPHQL_URL_ENV",
    "REST_URL_ENV",
    "USER_AGENT",
    "RunPodClient",
]
