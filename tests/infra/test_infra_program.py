"""The program's wiring under pulumi mocks: config -> volume + pod -> the contract's stack outputs."""

from __future__ import annotations

import base64
import pickle

import dill
import pulumi
import pytest
from pulumi.runtime import rpc

from infra import program
from infra.config_checks import ConfigError
from infra.pod_resource import PodProvider
from infra.volume_resource import VolumeProvider
from tests.infra.test_infra_config import PUB

PROJECT = "runpod-trainer"
CONTRACT_OUTPUTS = {
    "pod_id",
    "ssh_host",
    "ssh_port",
    "ssh_user",
    "volume_id",
    "data_center",
    "gpu_type",
    "gpu_count",
    "market",
    "bid_per_gpu",
    "cost_per_hr",
    "workspace",
    "spot_fallback",
    "max_on_demand_price",
    "pod_name",
    "image",
}
# Added to the contract: the pod resource's URN, for `pulumi up --replace` (runner/recovery.py), and
# the idle stop's time, which the runner hands every launch (RT_IDLE_STOP_MINUTES).
OUTPUTS = CONTRACT_OUTPUTS | {"pod_urn", "idle_stop_minutes", "auto_resume", "stall_minutes"}
POD_TYPE = "pulumi-python:dynamic/runpod:SpotPod"


def is_pod_urn(urn: object) -> bool:
    """The pod resource's URN (the engine decides the parent type chain; the mocks add the Stack's)."""
    return isinstance(urn, str) and urn.startswith(f"urn:pulumi:dev::{PROJECT}::") and urn.endswith(f"{POD_TYPE}::pod")


VOLUME_TYPE = "pulumi-python:dynamic/runpod:NetworkVolume"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ == POD_TYPE:
            # What the provider's create returns, after the engine's float round trip.
            state.update(
                pod_id="pod-abc",
                market="spot",
                status="RUNNING",
                ssh_host="203.0.113.7",
                ssh_port=40022.0,
                ssh_user="root",
                cost_per_hr=0.5,
                preempted=False,
            )
            return "pod-abc", state
        if args.typ == VOLUME_TYPE:
            state.update(volume_id="vol-123")
            return "vol-123", state
        return f"{args.name}-id", state

    def call(self, args):
        return {}

    def by_type(self, typ):
        found = [r for r in self.resources if r.typ == typ]
        assert len(found) == 1, found
        return found[0]


def _config(**extra) -> dict[str, str]:
    values = {"repoName": "childs_speech_recog_chall", "sshPublicKey": PUB, **extra}
    return {f"{PROJECT}:{k}": str(v) for k, v in values.items()}


@pytest.fixture
def mocks():
    m = Mocks()
    pulumi.runtime.set_mocks(m, project=PROJECT, stack="dev", preview=False)
    pulumi.runtime.set_all_config(_config(), [])
    yield m
    pulumi.runtime.set_all_config({}, [])


@pulumi.runtime.test
def test_volume_and_pod_are_wired_from_the_config(mocks):
    pulumi.runtime.set_all_config(_config(gpuCount=2, bidPerGpu="0.42", dataCenter="eu-ro-1"), [])
    stack = program.build()

    def check(_):
        vol = mocks.by_type(VOLUME_TYPE)
        assert vol.name == "volume"
        assert {k: v for k, v in vol.inputs.items() if k != "__provider"} == {
            "volume_name": "runpod-trainer-dev-volume",
            "size_gb": 100,
            "data_center": "EU-RO-1",
        }
        pod = mocks.by_type(POD_TYPE)
        inputs = {k: v for k, v in pod.inputs.items() if k != "__provider"}
        assert inputs == {
            "pod_name": "runpod-trainer-dev",
            "image": "runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204",
            "gpu_type": "NVIDIA GeForce RTX 4090",
            "gpu_count": 2,
            "data_center": "EU-RO-1",
            "cloud_type": "SECURE",
            "volume_id": "vol-123",  # the volume's ID flows into the pod
            "volume_mount_path": "/workspace",
            "container_disk_gb": 50,
            "ports": ["22/tcp"],
            "env": {
                "HF_HOME": "/workspace/.cache/huggingface",
                "PYTHONPATH": "/workspace/childs_speech_recog_chall",
                "PUBLIC_KEY": PUB,
            },
            "bid_per_gpu": 0.42,
            "spot_fallback": "fail",
            "create_timeout_s": 900,
            "idle_stop_minutes": 20,
        }
        # Output-only properties are not inputs; no API key anywhere in the inputs.
        assert "pod_id" not in inputs and "max_on_demand_price_per_gpu" not in inputs

    return stack.pod.urn.apply(check)


@pulumi.runtime.test
def test_stack_outputs_are_exactly_the_contract(mocks):
    pulumi.runtime.set_all_config(
        _config(spotFallback="on-demand", maxOnDemandPricePerGpu="0.69", podName="trainer"), []
    )
    stack = program.build()
    assert set(stack.outputs) == OUTPUTS
    names = sorted(stack.outputs)

    def check(values):
        out = dict(zip(names, values))
        assert is_pod_urn(out.pop("pod_urn")), values
        assert out == {
            "pod_id": "pod-abc",
            "ssh_host": "203.0.113.7",
            "ssh_port": 40022,
            "ssh_user": "root",
            "volume_id": "vol-123",
            "data_center": "EU-RO-1",
            "gpu_type": "NVIDIA GeForce RTX 4090",
            "gpu_count": 1,
            "market": "spot",
            "bid_per_gpu": 0.5,
            "cost_per_hr": 0.5,
            "workspace": "/workspace",
            "spot_fallback": "on-demand",
            "max_on_demand_price": 0.69,
            "pod_name": "trainer",
            "image": "runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204",
            "idle_stop_minutes": 20,
            "auto_resume": True,
            "stall_minutes": 45,
        }
        assert isinstance(out["ssh_port"], int)  # the engine's float becomes int again

    return pulumi.Output.all(*[stack.outputs[n] for n in names]).apply(check)


@pulumi.runtime.test
def test_main_exports_the_contract_outputs(mocks, monkeypatch):
    exported: dict[str, object] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))
    built: list[program.Stack] = []
    real_build = program.build
    monkeypatch.setattr(program, "build", lambda *a, **kw: built.append(real_build(*a, **kw)) or built[-1])
    program.main()
    assert set(exported) == OUTPUTS

    def check(values):
        *plain, urn, pod_urn = values
        assert plain == ["pod-abc", 40022, "/workspace"]
        assert pod_urn == urn and is_pod_urn(pod_urn)  # exactly the pod resource's own URN

    return pulumi.Output.all(
        exported["pod_id"], exported["ssh_port"], exported["workspace"], built[0].pod.urn, exported["pod_urn"]
    ).apply(check)


def test_invalid_config_fails_at_preview_before_any_resource(monkeypatch):
    m = Mocks()
    pulumi.runtime.set_mocks(m, project=PROJECT, stack="dev", preview=True)
    pulumi.runtime.set_all_config({f"{PROJECT}:cloudType": "COMMUNITY", f"{PROJECT}:volumeSizeGb": "2"}, [])
    try:
        with pytest.raises(ConfigError) as err:
            program.build()
    finally:
        pulumi.runtime.set_all_config({}, [])
    text = str(err.value)
    for key in ("cloudType", "volumeSizeGb", "repoName", "sshPublicKey"):
        assert f"runpod-trainer:{key}" in text
    assert m.resources == []


@pulumi.runtime.test
def test_providers_are_pickled_by_reference_and_hold_nothing(mocks):
    stack = program.build()

    def check(_):
        for typ, cls in ((POD_TYPE, PodProvider), (VOLUME_TYPE, VolumeProvider)):
            raw = mocks.by_type(typ).inputs["__provider"]
            assert rpc.is_rpc_secret(raw)  # encrypted in state anyway
            blob = base64.b64decode(rpc.unwrap_rpc_secret(raw))
            # By reference: the module path and class name, nothing else (no code, no key).
            assert cls.__module__.encode() in blob and cls.__name__.encode() in blob
            assert len(blob) < 120
            provider = dill.loads(blob)
            assert type(provider) is cls and vars(provider) == {}
            assert pickle.loads(blob).__class__ is cls

    return pulumi.Output.all(stack.pod.urn, stack.volume.urn).apply(check)
