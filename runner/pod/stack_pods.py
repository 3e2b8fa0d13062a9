"""The stack's pods when it has several on its volume (infra/stack_pods.py): the `pods` output, parsed.

A one-pod stack has no `pods` output and StackOutputs describes its pod, as always. With several,
StackOutputs still describes the first pod at the top level, and `for_pod(name)` gives the same outputs
seen from another pod (runner/pod/stack_outputs.py: its id, endpoint, URN, market, bid, cost and its
slot, the folder of its records on the volume). Everything that takes StackOutputs then works on that pod: StackPod, PodLink, recovery
through `pulumi up --replace <its urn>`, the watcher.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from remote.podside.volumepaths import POD_SLOT_RE
from runner.errors import StackError

_WHY = "; run `pulumi up` to refresh the outputs."


@dataclass(frozen=True)
class PodEntry:
    """One entry of the `pods` output (docs/reference/stack.md)."""

    name: str
    pod_id: str
    slot: str = ""  # "" for the first pod: its records are where they always were
    pod_name: str | None = None
    pod_urn: str | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None
    ssh_user: str = "root"
    market: str = "spot"
    bid_per_gpu: float | None = None
    cost_per_hr: float | None = None


def parse_pods(raw: Any) -> tuple[PodEntry, ...]:
    """The `pods` output ({name: {...}}), checked key by key; () when the stack has one pod."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise StackError("stack output pods should be an object of pods by name" + _WHY)
    out = []
    known = {f.name for f in fields(PodEntry)} - {"name"}
    for name, entry in raw.items():
        if not isinstance(name, str) or not POD_SLOT_RE.match(name) or not isinstance(entry, dict):
            raise StackError("stack output pods has an entry that is not a pod" + _WHY)
        values = {k: v for k, v in entry.items() if k in known and v is not None}
        if not isinstance(values.get("pod_id"), str) or not values["pod_id"]:
            raise StackError(f"stack output pods.{name} has no pod_id (the pod was not created)" + _WHY)
        slot = values.get("slot", "")
        if not isinstance(slot, str) or (slot and not POD_SLOT_RE.match(slot)):
            raise StackError(f"stack output pods.{name}.slot is not a pod's name" + _WHY)
        for key in ("pod_name", "pod_urn", "ssh_host", "ssh_user", "market"):
            if key in values and not isinstance(values[key], str):
                raise StackError(f"stack output pods.{name}.{key} should be a string" + _WHY)
        try:
            if "ssh_port" in values:
                values["ssh_port"] = int(values["ssh_port"])
            for key in ("bid_per_gpu", "cost_per_hr"):
                if key in values:
                    values[key] = float(values[key])
        except (TypeError, ValueError):
            raise StackError(f"stack output pods.{name} has a value that is not a number" + _WHY) from None
        out.append(PodEntry(name=name, **values))
    if sum(1 for p in out if not p.slot) != 1:
        raise StackError("stack output pods should have exactly one first pod (slot '')" + _WHY)
    return tuple(out)


def describe(pods: tuple[PodEntry, ...]) -> str:
    return ", ".join(p.name for p in pods)
