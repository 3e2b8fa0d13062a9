"""The RunPod network volume as a Pulumi dynamic resource (`runpod:NetworkVolume`).

In place: rename, grow. Replace: data center (the volume is pinned to it). Shrinking is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from backends.runpod.errors import NotFound, VolumeInUse
from backends.runpod.models import NetworkVolume as RunPodVolume
from infra import provider_support as ps
from infra.config import VOLUME_SIZE_RANGE

INPUT_KEYS = ("volume_name", "size_gb", "data_center")
REPLACE_KEYS = ("data_center",)
OUTPUT_KEYS = ("volume_id",)


class VolumeStillInUse(RuntimeError):
    expected = True  # `pulumi up` shows the message alone (infra/provider_support.py)


@dataclass(frozen=True)
class VolumeArgs:
    volume_name: str
    size_gb: int
    data_center: str

    def to_inputs(self) -> dict[str, Any]:
        return {"volume_name": self.volume_name, "size_gb": self.size_gb, "data_center": self.data_center}

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> VolumeArgs:
        return cls(
            volume_name=str(props["volume_name"]),
            size_gb=ps.as_int(props["size_gb"]),
            data_center=str(props["data_center"]).upper(),
        )


def _outputs(vol: RunPodVolume) -> dict[str, Any]:
    return {"volume_id": vol.id, "volume_name": vol.name, "size_gb": int(vol.size_gb), "data_center": vol.data_center}


def _norm(key: str, value: Any) -> Any:
    if value is None or ps.is_unknown(value):
        return value
    if key == "size_gb":
        return ps.as_int(value)
    if key == "data_center":
        return str(value).upper()
    return value


# Pulumi pickles this provider by reference (module path + class name) into every stack's state:
# keep it in infra/volume_resource.py and named VolumeProvider, or existing stacks can no longer be read.
class VolumeProvider(ps.RunPodProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        inputs = dict(news)
        lo, hi = VOLUME_SIZE_RANGE
        size = news.get("size_gb")
        if not ps.is_unknown(size):
            try:
                inputs["size_gb"] = ps.as_int(size)
                if not lo <= inputs["size_gb"] <= hi:
                    failures.append(CheckFailure("size_gb", f"must be {lo}..{hi} GB, got {inputs['size_gb']}"))
                old = olds.get("size_gb")
                if old is not None and not ps.is_unknown(old) and inputs["size_gb"] < ps.as_int(old):
                    failures.append(
                        CheckFailure(
                            "size_gb",
                            f"a network volume can only grow ({ps.as_int(old)} GB now); "
                            f"set volumeSizeGb back to at least {ps.as_int(old)}",
                        )
                    )
            except (TypeError, ValueError):
                failures.append(CheckFailure("size_gb", f"must be a whole number of GB, got {size!r}"))
        for key in ("volume_name", "data_center"):
            if not ps.is_unknown(news.get(key)) and not news.get(key):
                failures.append(CheckFailure(key, "must not be empty"))
        if isinstance(news.get("data_center"), str) and not ps.is_unknown(news["data_center"]):
            inputs["data_center"] = news["data_center"].upper()
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # `olds` are the stored outputs (they echo the inputs); __provider is deliberately ignored.
        changed = [k for k in INPUT_KEYS if _norm(k, olds.get(k)) != _norm(k, news.get(k))]
        replaces = [k for k in changed if k in REPLACE_KEYS]
        # Create-before-delete on replace: the old volume (and the checkpoints on it) goes away only
        # once its successor exists; the pod on it is replaced in between (delete-before-replace).
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        args = VolumeArgs.from_props(props)
        vol = ps.make_client().create_network_volume(args.volume_name, args.size_gb, args.data_center)
        return CreateResult(vol.id, {**args.to_inputs(), **_outputs(vol)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            vol = ps.make_client().get_network_volume(id_)
        except NotFound:
            return ReadResult(None, {})  # gone: dropped from state, the next `pulumi up` recreates it
        return ReadResult(id_, {**ps.without_provider(props), **_outputs(vol)})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        args = VolumeArgs.from_props(news)
        name = args.volume_name if args.volume_name != olds.get("volume_name") else None
        size = args.size_gb if _norm("size_gb", olds.get("size_gb")) != args.size_gb else None
        client = ps.make_client()
        if name is None and size is None:
            vol = client.get_network_volume(id_)
        else:
            vol = client.update_network_volume(id_, name=name, size_gb=size)
        return UpdateResult({**args.to_inputs(), **_outputs(vol)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            ps.make_client().delete_network_volume(id_)
        except NotFound:
            return
        except VolumeInUse as exc:
            raise VolumeStillInUse(
                f"Network volume {id_} is still attached to a pod, so RunPod refuses to delete it "
                f"({exc.message}). Terminate every pod that mounts it (one created outside this stack "
                "must be terminated in the RunPod console), then run `pulumi destroy` again."
            ) from None


class NetworkVolume(pulumi.dynamic.Resource, module="runpod", name="NetworkVolume"):
    volume_id: pulumi.Output[str]
    volume_name: pulumi.Output[str]
    size_gb: pulumi.Output[int]
    data_center: pulumi.Output[str]

    def __init__(self, resource_name: str, args: VolumeArgs, opts: pulumi.ResourceOptions | None = None):
        props = {**args.to_inputs(), **{k: None for k in OUTPUT_KEYS}}
        super().__init__(VolumeProvider(), resource_name, props, opts)
