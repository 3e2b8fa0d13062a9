"""The stack's outputs (docs/reference/stack.md), parsed and checked: StackOutputs, and the same outputs
seen from one pod of a stack with several (for_pod; the `pods` output: runner/pod/stack_pods.py).
runner/pod/stack.py runs the Pulumi CLI that prints them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from backends.ssh_endpoint import endpoint_problem
from runner.errors import NoStackOutputs, StackError

if TYPE_CHECKING:
    from remote.podside.volumepaths import VolumePaths
    from runner.pod.stack_pods import PodEntry


@dataclass(frozen=True)
class StackOutputs:
    """The stack outputs (docs/reference/stack.md). Only pod_id is required; the rest falls back to safe defaults."""

    stack: str
    pod_id: str
    ssh_host: str | None = None
    ssh_port: int | None = None
    ssh_user: str = "root"
    volume_id: str | None = None
    data_center: str | None = None
    gpu_type: str | None = None
    gpu_count: int = 1
    market: str = "spot"  # "spot" | "on-demand"
    bid_per_gpu: float | None = None
    cost_per_hr: float | None = None
    workspace: str = "/workspace"
    spot_fallback: str = "fail"  # "fail" | "on-demand"
    max_on_demand_price: float | None = None
    pod_name: str | None = None
    image: str | None = None
    pod_urn: str | None = None  # the pod resource's URN (for `pulumi up --replace`); older stacks lack it
    idle_stop_minutes: float | None = None  # the pod's idle stop (0: off); older stacks lack it: the default applies
    auto_resume: bool | None = None  # the pod resumes its unfinished run at container start (None: the pod's default)
    stall_minutes: float | None = None  # the stall guard's default for a launch (None: the pod's default)
    # Several pods on the volume (runner/pod/stack_pods.py): all of them, and the one these outputs describe.
    pods: tuple[PodEntry, ...] = ()
    pod: str = ""  # its name ("" in a one-pod stack)
    slot: str = ""  # the folder of its records on the volume ("" for the first pod)

    def for_pod(self, name: str) -> StackOutputs:
        """The outputs seen from the pod `name` (or pod id) of a stack with several: its id, endpoint, URN,
        market, bid, cost and slot in the pod's fields; StackError if none."""
        for entry in self.pods:
            if name in (entry.name, entry.pod_id):
                return replace(
                    self,
                    pod_id=entry.pod_id,
                    ssh_host=entry.ssh_host,
                    ssh_port=entry.ssh_port,
                    ssh_user=entry.ssh_user,
                    market=entry.market,
                    bid_per_gpu=entry.bid_per_gpu,
                    cost_per_hr=entry.cost_per_hr,
                    pod_name=entry.pod_name,
                    pod_urn=entry.pod_urn,
                    pod=entry.name,
                    slot=entry.slot,
                )
        names = ", ".join(p.name for p in self.pods) if self.pods else "none: this stack has one pod (podCount)"
        raise StackError(f"stack {self.stack!r} has no pod {name!r}; its pods: {names}")

    @property
    def volume_paths(self) -> VolumePaths:
        """Where this pod's records are on the volume."""
        from remote.podside.volumepaths import VolumePaths

        return VolumePaths(self.workspace, self.slot)

    @property
    def shared_volume(self) -> bool:
        """Several pods share the volume: each run gets its own checkout (RT_SHARED_VOLUME)."""
        return len(self.pods) > 1

    @property
    def idle_stop_after_min(self) -> float:
        return DEFAULT_IDLE_STOP_MINUTES if self.idle_stop_minutes is None else self.idle_stop_minutes

    @property
    def is_spot(self) -> bool:
        return self.market == "spot"


_STR = (
    "ssh_host",
    "ssh_user",
    "volume_id",
    "data_center",
    "gpu_type",
    "market",
    "workspace",
    "spot_fallback",
    "pod_name",
    "image",
    "pod_urn",
)
_INT = ("ssh_port", "gpu_count")
_FLOAT = ("bid_per_gpu", "cost_per_hr", "max_on_demand_price", "idle_stop_minutes", "stall_minutes")
_BOOL = ("auto_resume",)
DEFAULT_IDLE_STOP_MINUTES = 20.0  # infra/stack_config.py's default of idleStopMinutes


def parse_outputs(data: object, stack: str) -> StackOutputs:
    """Turn the decoded JSON into StackOutputs; errors name the key, never a value."""
    if not isinstance(data, dict):
        raise StackError(
            f"`pulumi stack output --json` for stack {stack!r} did not print a JSON object; "
            "check that the project's Pulumi CLI works (`pulumi stack output`)."
        )
    if not data:
        raise NoStackOutputs(f"stack {stack!r} has no outputs yet; run `pulumi up` first.")
    if any(v == "[secret]" for v in data.values()):
        raise StackError(
            "Pulumi printed secret outputs masked as [secret] despite --show-secrets; "
            "set PULUMI_CONFIG_PASSPHRASE(_FILE) so the stack's secrets can be decrypted."
        )
    pod_id = data.get("pod_id")
    if not isinstance(pod_id, str) or not pod_id:
        raise NoStackOutputs(f"stack {stack!r} has no pod_id output (the pod was not created); run `pulumi up` first.")
    kw: dict[str, Any] = {}  # str, int or float per key: checked key by key below
    for key in _STR:
        v = data.get(key)
        if v is None:
            continue
        if not isinstance(v, str):
            raise StackError(f"stack output {key} should be a string; run `pulumi up` to refresh the outputs.")
        kw[key] = v
    for key in _INT:
        v = data.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise StackError(f"stack output {key} should be an integer; run `pulumi up` to refresh the outputs.")
        try:
            iv = int(v)
            if isinstance(v, float) and v != iv:
                raise ValueError
        except ValueError:
            raise StackError(
                f"stack output {key} should be an integer; run `pulumi up` to refresh the outputs."
            ) from None
        kw[key] = iv
    for key in _FLOAT:
        v = data.get(key)
        if v is None:
            continue
        if isinstance(v, bool):
            raise StackError(f"stack output {key} should be a number; run `pulumi up` to refresh the outputs.")
        try:
            kw[key] = float(v)
        except (TypeError, ValueError):
            raise StackError(
                f"stack output {key} should be a number; run `pulumi up` to refresh the outputs."
            ) from None
    for key in _BOOL:
        v = data.get(key)
        if v is None:
            continue
        if not isinstance(v, bool):
            raise StackError(f"stack output {key} should be true or false; run `pulumi up` to refresh the outputs.")
        kw[key] = v
    if kw.get("market", "spot") not in ("spot", "on-demand"):
        raise StackError("stack output market should be 'spot' or 'on-demand'; run `pulumi up`.")
    if endpoint_problem("localhost", 22, kw.get("ssh_user", "root")) is not None:  # it goes into ssh's argv
        raise StackError("stack output ssh_user is not a plain user name; run `pulumi up` to refresh the outputs.")
    if data.get("pods") is not None:  # several pods (runner/pod/stack_pods.py); imported only then
        from runner.pod.stack_pods import parse_pods

        kw["pods"] = parse_pods(data["pods"])
    return StackOutputs(stack=stack, pod_id=pod_id, **kw)


NEEDED_OUTPUTS = {"pod_id", "pods", *_STR, *_INT, *_FLOAT, *_BOOL}

__all__ = ["DEFAULT_IDLE_STOP_MINUTES", "NEEDED_OUTPUTS", "StackOutputs", "parse_outputs"]
