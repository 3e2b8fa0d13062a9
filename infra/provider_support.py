"""What both dynamic providers share: where the API key lives, the client factory, coercion.

The provider objects are pickled (by reference) into the stack state, so they hold nothing: the
API key given to `configure()` is kept in this module's memory, which is never pickled, and a
fresh client (plain values, no sockets) is built for every call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import ConfigureRequest, ResourceProvider
from pulumi.runtime import rpc

from backends.runpod.client import API_KEY_ENV, RunPodClient
from backends.runpod.errors import RunPodError

TOKEN_CONFIG_KEY = "runpod:token"
PROVIDER_KEY = "__provider"
UNKNOWN = rpc.UNKNOWN  # what check/diff see for values not known during preview

_lock = threading.Lock()
_token: str | None = None


class MissingApiKey(RuntimeError):
    pass


def set_token(token: str | None) -> None:
    global _token
    with _lock:
        _token = token or None


def make_client() -> RunPodClient:
    """A client for this call: key from `runpod:token` (via configure) or RUNPOD_API_KEY."""
    with _lock:
        token = _token
    if not token and not os.environ.get(API_KEY_ENV):
        raise MissingApiKey(
            "No RunPod API key. Set it once per stack with `pulumi config set --secret runpod:token` "
            f"(paste the key when asked), or export {API_KEY_ENV} before running pulumi."
        )
    return RunPodClient.from_env(api_key=token)


# Errors whose message says everything (ours and the client's): `pulumi up` shows them without
# the chain of tracebacks behind them. Any other exception is a bug and keeps its whole traceback.
_EXPECTED = (RunPodError, MissingApiKey)
_WRAPPED = ("check", "diff", "create", "read", "update", "delete")


def _message_first(method):
    """Pulumi's dynamic-provider server sends `traceback.format_exc()` as the error text, so the
    message always comes last. It can come right after a three-frame traceback (the server's two
    frames and this one) instead of after the whole chain through the client and its retries: an
    expected error is re-raised here with its traceback and its cause dropped."""

    def wrapped(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if isinstance(exc, _EXPECTED) or getattr(exc, "expected", False):
                raise exc.with_traceback(None) from None  # <- the provider's error: the next line says what
            raise

    wrapped.__name__, wrapped.__qualname__, wrapped.__doc__ = method.__name__, method.__qualname__, method.__doc__
    wrapped.__wrapped__ = method  # type: ignore[attr-defined]
    return wrapped


class RunPodProvider(ResourceProvider):
    """Base class: takes the key from the stack config without ever storing it on the instance.
    Every provider method's own errors reach `pulumi up` message first (_message_first)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _WRAPPED:
            method = cls.__dict__.get(name)
            if method is not None and not hasattr(method, "__wrapped__"):
                setattr(cls, name, _message_first(method))

    def configure(self, req: ConfigureRequest) -> None:
        token = req.config.get(TOKEN_CONFIG_KEY)
        if token:
            set_token(str(token))

    def __repr__(self) -> str:  # never show more than the class
        return f"{type(self).__name__}()"


# ---------------------------------------------------------------- coercion (numbers arrive as float)
def as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    f = float(value)
    if f != int(f):
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(f)


def as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return float(value)


def opt_float(value: Any) -> float | None:
    return None if value is None else as_float(value)


def without_provider(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != PROVIDER_KEY}


def is_unknown(value: Any) -> bool:
    return value == UNKNOWN if isinstance(value, str) else False
