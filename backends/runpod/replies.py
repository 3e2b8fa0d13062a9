"""What a RunPod reply means: the server's own words (`reply_message`), and the RunPodError a failed
reply is, for REST v2 by its status (`rest_error`) and for GraphQL by its errors (`graphql_data`).
RunPodClient (client.py) sends the requests and retries; this module only reads what came back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

from backends.runpod.errors import (
    _HINT_AUTH,
    _HINT_BALANCE,
    _HINT_GRAPHQL_GONE,
    _HINTS,
    AuthError,
    GraphQLGone,
    NotFound,
    RunPodError,
    _classify,
)


@dataclass
class Reply:
    """One HTTP answer, as read off the wire."""

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


class ErrorContext(TypedDict):
    """What every error raised for a reply carries (the keyword arguments of RunPodError)."""

    status: int | None
    request_id: str | None
    operation: str | None


def rest_error(
    reply: Reply, operation: str, on_conflict: type[RunPodError], *, scrub: Callable[[str], str]
) -> RunPodError:
    """The RunPodError a failed REST v2 reply is: by its status, then by what the server said.
    on_conflict: what a 409 means for this call."""
    msg = scrub(reply_message(reply) or f"HTTP {reply.status}")
    kw = ErrorContext(status=reply.status, request_id=reply.request_id, operation=operation)
    if reply.status in (401, 403):
        return AuthError(msg, hint=_HINT_AUTH, **kw)
    if reply.status == 404:
        return NotFound(msg, **kw)
    if reply.status == 402:
        return RunPodError(msg, hint=_HINT_BALANCE, **kw)
    if reply.status == 409:
        return on_conflict(msg, hint=_HINTS.get(on_conflict), **kw)
    if reply.status == 422:
        return RunPodError(
            msg, hint="the request body was rejected; this is a bug in the client or a RunPod API change", **kw
        )
    cls = _classify(msg)
    if cls is NotFound and reply.status == 400:
        cls = RunPodError  # a 400 mentioning "not found" is a rule violation, not a missing target
    return cls(msg, hint=_HINTS.get(cls), **kw)


def graphql_data(reply: Reply, operation: str, *, spot_op: bool, scrub: Callable[[str], str]) -> Any:
    """A GraphQL reply's `data`, or the RunPodError it is (errors arrive inside HTTP 200; the endpoint
    gone is GraphQLGone). spot_op: the call is a spot operation (its refusals read as spot refusals)."""
    kw = ErrorContext(status=reply.status, request_id=reply.request_id, operation=operation)
    if reply.status in (401, 403):
        return_msg = scrub(reply_message(reply) or "unauthorized")
        raise AuthError(return_msg, hint=_HINT_AUTH, **kw)
    if reply.status in (404, 405, 410):
        # The endpoint itself is gone (RunPod retires GraphQL "in early 2027" with 410 Gone; a 404 or
        # 405 on /graphql means the same). Every GraphQL call here is a spot operation or spot history.
        server = scrub(reply_message(reply) or f"HTTP {reply.status}")
        raise GraphQLGone(f"RunPod's GraphQL API is gone ({server})", hint=_HINT_GRAPHQL_GONE, **kw)
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
        msg = scrub("; ".join(m for m in msgs if m) or "GraphQL error")
        cls = _classify(msg, spot_op=spot_op)
        raise cls(msg, hint=_HINTS.get(cls), **kw)
    if reply.status != 200 or not isinstance(doc, dict) or "data" not in doc:
        msg = scrub(reply_message(reply) or f"unexpected GraphQL answer (HTTP {reply.status})")
        raise RunPodError(msg, **kw)
    return doc["data"] or {}


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    return float(int(value)) if value.isdigit() else None


def reply_message(reply: Reply) -> str:
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


__all__ = ["ErrorContext", "Reply", "graphql_data", "parse_retry_after", "reply_message", "rest_error"]
