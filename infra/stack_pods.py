"""Several pods in one stack, on its one network volume (podCount / podNames).

The first pod is the resource `pod` every stack always had: its URN, inputs and outputs never change,
so a one-pod stack keeps working as it was. Every other pod is the resource `pod-<name>`, with the same
policy (GPU, bid, fallback, image, idle stop) and RT_POD_SLOT=<name> in its environment, which gives it
its own records on the volume (remote/podside/volumepaths.py); `pulumi up` adds or removes those
without touching the others. The stack output `pods` lists every pod by name (docs/reference/stack.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from remote.podside.volumepaths import POD_SLOT_RE

MAX_PODS = 16
SLOT_ENV = "RT_POD_SLOT"  # in every pod's environment but the first's


def default_names(count: int) -> tuple[str, ...]:
    return tuple(f"pod{i}" for i in range(1, count + 1))


def pod_names(values: Mapping[str, Any], p: Any) -> tuple[str, ...]:
    """The pods' names from podCount and/or podNames; () for one unnamed pod. Problems go to p."""
    count = p.integer(values, "podCount", 1, 1, MAX_PODS)
    raw = values.get("podNames")
    if raw in (None, "", []):
        return default_names(count) if count > 1 else ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip().startswith("[") else raw.split(",")
        except json.JSONDecodeError:
            raw = None
    if not isinstance(raw, (list, tuple)) or not raw:
        p.add("podNames", 'must be a list of names like ["a", "b"]')
        return ()
    names = tuple(str(n).strip() for n in raw)
    bad = [n for n in names if not POD_SLOT_RE.match(n)]
    if bad:
        p.add("podNames", f"entries must be lower-case letters, digits and '-', at most 32 (got {bad!r})")
    if len(set(names)) != len(names):
        p.add("podNames", "must not name a pod twice")
    if len(names) > MAX_PODS:
        p.add("podNames", f"names at most {MAX_PODS} pods")
    if "podCount" in values and count != len(names):
        p.add("podCount", f"is {count} but podNames names {len(names)}; keep one of them")
    return names


def resource_name(index: int, name: str) -> str:
    """The Pulumi resource name: `pod` for the first (its URN stays), `pod-<name>` for the others."""
    return "pod" if index == 0 else f"pod-{name}"
