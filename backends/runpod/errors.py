"""The RunPod client's errors, and how a server's message is classified into one (with a hint).

Every failure the client raises is a RunPodError; `str(err)` says the operation, the HTTP status,
the request id and, where we know one, what to do.
"""

from __future__ import annotations


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
    """No machine for the request: 'There are no longer any instances available…', not enough free GPUs on
    the host, and the SDK's capacity phrases (see _CAPACITY_MARKERS)."""


class SpotUnavailable(RunPodError):
    """The spot GraphQL operations are gone or rejected (field undefined, mutation removed)."""


class GraphQLGone(SpotUnavailable):
    """RunPod's GraphQL endpoint itself is gone (HTTP 410, or 404/405 on /graphql): it was retired.

    A SpotUnavailable, because GraphQL was the only API that could rent, resume or price spot pods;
    everything else this client does is on REST v2 and keeps working."""


class RateLimited(RunPodError):
    """HTTP 429 still returned after the client's retries; `retry_after` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class InvalidAction(RunPodError):
    """The action is not valid for the pod's current status (REST 409, 'Cannot resume a spot pod…')."""


class VolumeInUse(RunPodError):
    """A network volume cannot be deleted while a pod uses it (RunPod's text, or a 409 on the delete)."""


class TransientError(RunPodError):
    """5xx, connection reset or timeout, still failing after bounded retries with backoff."""


class BidTooLow(RunPodError):
    """The spot bid is below RunPod's minimum (message text UNCONFIRMED; see the README's "Assumptions")."""


# Capacity, as RunPod words it: its GraphQL texts, and the phrases RunPod's own SDK (runpod 2.0.0rc2,
# runpod/apps/api.py is_capacity_error) treats as capacity. A REST v2 400 has no machine-readable code.
_CAPACITY_MARKERS = (
    "no longer any instances",
    "no instances available",
    "not enough free gpus",
    "enough disk space",
    "resources to deploy your pod",
    "insufficient capacity",
    "no available machine",
    "out of stock",
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
_HINT_CAPACITY = (
    "RunPod has no machine for this request right now: retry later, try another data "
    "center or GPU type, or allow the on-demand fallback"
)
_HINT_SPOT = (
    "RunPod rejected the spot (interruptible) API; spot pods may have been withdrawn -- "
    "use the on-demand market instead: `pulumi config set spotFallback on-demand` and "
    "`pulumi config set maxOnDemandPricePerGpu <USD per GPU-hour>`"
)
_HINT_GRAPHQL_GONE = (
    "RunPod retired its GraphQL API, the only API that could rent, resume or price spot pods, "
    "so spot pods are no longer available to this tool; pods are read, stopped and created "
    "on demand over REST v2. Let the stack use on-demand pods: `pulumi config set spotFallback "
    "on-demand` and `pulumi config set maxOnDemandPricePerGpu <USD per GPU-hour>`"
)
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
    GraphQLGone: _HINT_GRAPHQL_GONE,
    VolumeInUse: _HINT_VOLUME_IN_USE,
    BidTooLow: _HINT_BID,
    RateLimited: _HINT_RATE,
    TransientError: _HINT_TRANSIENT,
}
