"""The dynamic providers against the fake RunPod API, in process.

The providers are the ones the program really serializes: `program.build()` runs under pulumi
mocks, the `__provider` blobs are captured and unpickled, `configure()` receives the token the way
the engine passes `runpod:token`, and every call gets props shaped like the engine's (numbers as
float, `__provider` as a string).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import dill
import pulumi
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.runtime import rpc

from backends.runpod.client import API_KEY_ENV, GRAPHQL_URL_ENV, REST_URL_ENV
from backends.runpod.models import EXITED, RUNNING, TERMINATED
from infra import pod_lifecycle as life
from infra import program
from infra import provider_support as ps
from infra.volume_resource import VolumeStillInUse
from standins.ports import free_port
from tests.infra.test_infra_config import PUB

PROJECT = "runpod-trainer"


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args):
        self.inputs[args.typ.rsplit(":", 1)[1]] = dict(args.inputs)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}


def capture_program_inputs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Run the real program under mocks; returns the registered inputs per resource type."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="dev", preview=False)
    pulumi.runtime.set_all_config({f"{PROJECT}:{k}": str(v) for k, v in config.items()}, [])

    @pulumi.runtime.test
    def run():
        stack = program.build()
        return pulumi.Output.all(stack.pod.urn, stack.volume.urn)

    try:
        run()
    finally:
        pulumi.runtime.set_all_config({}, [])
    return mocks.inputs


def engine_shape(value: Any) -> Any:
    """What a value looks like after the engine's protobuf Struct: every number is a float."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: engine_shape(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [engine_shape(v) for v in value]
    return value


class Deployment:
    """The providers and their engine-shaped inputs for one stack config, wired to the fake."""

    def __init__(self, fake, monkeypatch, **config):
        base = {"repoName": "childs_speech_recog_chall", "sshPublicKey": PUB}
        captured = capture_program_inputs({**base, **config})
        self.fake = fake
        self.blobs: dict[str, str] = {}
        self.providers = {}
        self.inputs: dict[str, dict[str, Any]] = {}
        for kind, inputs in captured.items():
            blob = rpc.unwrap_rpc_secret(inputs["__provider"])
            self.blobs[kind] = blob
            provider = dill.loads(base64.b64decode(blob))
            self.providers[kind] = provider
            self.inputs[kind] = engine_shape({**inputs, "__provider": blob})
        # The engine's environment: URLs of the fake, NO key in the environment; the key only
        # arrives through configure() from the secret config `runpod:token`.
        env = fake.env()
        monkeypatch.delenv(API_KEY_ENV, raising=False)
        monkeypatch.setenv(REST_URL_ENV, env[REST_URL_ENV])
        monkeypatch.setenv(GRAPHQL_URL_ENV, env[GRAPHQL_URL_ENV])
        ps.set_token(None)
        for provider in self.providers.values():
            provider.configure(
                ConfigureRequest(Config({"runpod:token": fake.api_key, f"{PROJECT}:repoName": "x"}, PROJECT))
            )

    @property
    def volume(self):
        return self.providers["NetworkVolume"]

    @property
    def pod(self):
        return self.providers["SpotPod"]

    def create_volume(self) -> tuple[str, dict]:
        checked = self.volume.check({}, self.inputs["NetworkVolume"])
        assert checked.failures == []
        res = self.volume.create(engine_shape(checked.inputs))
        return res.id, engine_shape({**res.outs, "__provider": self.blobs["NetworkVolume"]})

    def pod_inputs(self, volume_id: str, **overrides) -> dict:
        return engine_shape({**self.inputs["SpotPod"], "volume_id": volume_id, **overrides})

    def create_pod(self, volume_id: str, **overrides) -> tuple[str, dict]:
        checked = self.pod.check({}, self.pod_inputs(volume_id, **overrides))
        assert checked.failures == []
        res = self.pod.create(engine_shape(checked.inputs))
        return res.id, engine_shape({**res.outs, "__provider": self.blobs["SpotPod"]})


@pytest.fixture
def deploy(fake_runpod, monkeypatch):
    def make(**config) -> Deployment:
        return Deployment(fake_runpod, monkeypatch, **config)

    yield make
    ps.set_token(None)


@pytest.fixture
def reachable(fake_runpod, sshd):
    """Pods of the fake publish SSH endpoints that are a real sshd."""
    fake_runpod.set_ssh_target(sshd.host, sshd.ports)
    return sshd


def live_pods(fake) -> list:
    return [p for p in fake.pods.values() if p.status != TERMINATED]


def assert_no_key(fake, *things: Any) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else json.dumps(thing, default=repr)
        assert fake.api_key not in text


# ---------------------------------------------------------------- volume
def test_volume_create_read_update_delete(deploy, fake_runpod):
    d = deploy(volumeSizeGb=20, dataCenter="eu-ro-1", volumeName="ckpt")
    vol_id, outs = d.create_volume()
    fake_vol = fake_runpod.volumes[vol_id]
    assert (fake_vol.name, fake_vol.size, fake_vol.data_center) == ("ckpt", 20, "EU-RO-1")
    assert outs["volume_id"] == vol_id and outs["size_gb"] == 20

    # No change (engine floats vs ints, a new __provider blob) -> no diff.
    assert d.volume.diff(vol_id, outs, {**d.inputs["NetworkVolume"], "__provider": "other"}).changes is False

    # Grow + rename in place.
    news = {**d.inputs["NetworkVolume"], "size_gb": 40.0, "volume_name": "ckpt2"}
    assert d.volume.check(outs, news).failures == []
    diff = d.volume.diff(vol_id, outs, news)
    assert diff.changes is True and diff.replaces == []
    updated = d.volume.update(vol_id, outs, news).outs
    assert (fake_vol.name, fake_vol.size) == ("ckpt2", 40) and updated["size_gb"] == 40

    read = d.volume.read(vol_id, engine_shape(updated))
    assert read.id == vol_id and read.outs["volume_name"] == "ckpt2"

    d.volume.delete(vol_id, updated)
    assert vol_id not in fake_runpod.volumes
    d.volume.delete(vol_id, updated)  # already gone: fine
    assert d.volume.read(vol_id, updated).id is None  # refresh drops it from the state
    assert_no_key(fake_runpod, outs, updated, read.outs, d.blobs)


def test_volume_still_in_use_is_a_clear_error(deploy, fake_runpod):
    d = deploy()
    vol_id, outs = d.create_volume()
    stranger = fake_runpod.add_pod(name="not-ours", volume_id=vol_id)
    with pytest.raises(VolumeStillInUse) as err:
        d.volume.delete(vol_id, outs)
    assert "still attached" in str(err.value) and "pulumi destroy" in str(err.value)
    assert vol_id in fake_runpod.volumes and fake_runpod.pods[stranger.id].status == RUNNING


# ---------------------------------------------------------------- pod: create
def test_spot_pod_create_waits_for_ssh_and_reports_the_endpoint(deploy, fake_runpod, reachable):
    d = deploy(bidPerGpu="0.45", gpuCount=1)
    vol_id, _ = d.create_volume()
    pod_id, outs = d.create_pod(vol_id)

    pod = fake_runpod.pods[pod_id]
    assert pod.status == RUNNING and pod.interruptible is True and pod.bid_per_gpu == 0.45
    assert pod.volume_id == vol_id and pod.data_center == "EU-RO-1" and pod.gpu_count == 1
    assert pod.env["PUBLIC_KEY"] == PUB
    assert pod.env["PYTHONPATH"] == "/workspace/childs_speech_recog_chall"
    assert outs["pod_id"] == pod_id and outs["market"] == "spot" and outs["status"] == RUNNING
    assert outs["ssh_host"] == reachable.host and int(outs["ssh_port"]) in reachable.ports
    assert outs["ssh_user"] == "root" and outs["preempted"] is False
    assert_no_key(fake_runpod, outs, d.blobs)


def test_every_created_pod_gets_the_idle_stop_in_its_start_command(deploy, fake_runpod, reachable):
    d = deploy()  # idleStopMinutes: the default, 20
    vol_id, _ = d.create_volume()
    pod_id, outs = d.create_pod(vol_id)
    args = fake_runpod.pods[pod_id].args  # GraphQL dockerArgs (spot)
    assert args.startswith("sh -c '") and "idlewatch --idle-seconds 1200 --workspace /workspace" in args
    assert "exec $S" in args and outs["idle_stop_minutes"] == 20

    d2 = deploy(spotFallback="on-demand", maxOnDemandPricePerGpu="0.70", idleStopMinutes="5", podName="od")
    fake_runpod.inject("podRentInterruptable", "no_capacity")
    pod2, _ = d2.create_pod(d2.create_volume()[0])
    assert "--idle-seconds 300 " in fake_runpod.pods[pod2].args  # REST v2 args (on-demand)


def test_idle_stop_off_leaves_the_image_start_command_alone(deploy, fake_runpod, reachable):
    d = deploy(idleStopMinutes="0")
    pod_id, _ = d.create_pod(d.create_volume()[0])
    assert fake_runpod.pods[pod_id].args == ""


def test_no_spot_capacity_without_fallback_creates_nothing(deploy, fake_runpod):
    d = deploy()
    vol_id, _ = d.create_volume()
    fake_runpod.inject("podRentInterruptable", "no_capacity")
    with pytest.raises(life.PodCreateError) as err:
        d.create_pod(vol_id)
    assert "Nothing was created" in str(err.value) and "spotFallback on-demand" in str(err.value)
    assert live_pods(fake_runpod) == []


def test_spot_withdrawn_without_fallback_creates_nothing(deploy, fake_runpod):
    d = deploy()
    vol_id, _ = d.create_volume()
    fake_runpod.remove_spot()
    with pytest.raises(life.PodCreateError, match="does not offer spot pods"):
        d.create_pod(vol_id)
    assert live_pods(fake_runpod) == []


def test_no_spot_capacity_falls_back_to_on_demand_under_the_cap(deploy, fake_runpod, reachable):
    d = deploy(spotFallback="on-demand", maxOnDemandPricePerGpu="0.70")  # fake's 4090: 0.69
    vol_id, _ = d.create_volume()
    fake_runpod.inject("podRentInterruptable", "no_capacity")
    pod_id, outs = d.create_pod(vol_id)
    assert outs["market"] == "on-demand" and fake_runpod.pods[pod_id].interruptible is False
    assert outs["ssh_host"] == reachable.host


def test_fallback_refused_above_the_cap(deploy, fake_runpod):
    d = deploy(spotFallback="on-demand", maxOnDemandPricePerGpu="0.60")
    vol_id, _ = d.create_volume()
    fake_runpod.inject("podRentInterruptable", "no_capacity")
    with pytest.raises(life.PodCreateError, match="above maxOnDemandPricePerGpu=0.6"):
        d.create_pod(vol_id)
    assert live_pods(fake_runpod) == []


def test_graphql_retired_on_demand_fallback_is_priced_from_price_secure_inside_the_cap(deploy, fake_runpod, reachable):
    """The day GraphQL answers 410: spot is gone, and the fallback reads the v2 catalog as the spec shapes it."""
    fake_runpod.retire_graphql()
    d = deploy(spotFallback="on-demand", maxOnDemandPricePerGpu="1.0")
    vol_id, _ = d.create_volume()
    pod_id, outs = d.create_pod(vol_id)
    assert outs["market"] == "on-demand" and fake_runpod.pods[pod_id].interruptible is False
    assert outs["cost_per_hr"] == pytest.approx(0.69)  # what RunPod bills the pod: price.secure x 1 GPU
    catalog = [r for r in fake_runpod.requests if r.path.startswith("/v2/catalog/gpus/")]
    assert catalog and all(r.status == 200 for r in catalog)
    assert {r.status for r in fake_runpod.requests if r.path == "/graphql"} == {410}


def test_graphql_retired_on_demand_fallback_above_the_cap_names_the_price_and_creates_nothing(deploy, fake_runpod):
    fake_runpod.retire_graphql()
    d = deploy(spotFallback="on-demand", maxOnDemandPricePerGpu="0.60")
    vol_id, _ = d.create_volume()
    with pytest.raises(life.PodCreateError) as err:
        d.create_pod(vol_id)
    text = str(err.value)
    assert "on-demand lists at $0.69/GPU-h (price.secure of RunPod's GPU catalog)" in text
    assert "above maxOnDemandPricePerGpu=0.6" in text and "Nothing was created" in text
    assert live_pods(fake_runpod) == [] and not [
        r for r in fake_runpod.requests if r.path == "/v2/pods" and r.method == "POST"
    ]


def test_create_that_times_out_terminates_its_pod(deploy, fake_runpod):
    fake_runpod.set_ssh_target("127.0.0.1", [free_port()])  # published, but nothing answers
    d = deploy()
    vol_id, _ = d.create_volume()
    with pytest.raises(life.PodCreateError) as err:
        d.create_pod(vol_id, create_timeout_s=2)
    text = str(err.value)
    assert "not reachable over SSH within 2s" in text and "was terminated" in text
    (pod,) = fake_runpod.pods.values()
    assert pod.status == TERMINATED  # nothing keeps billing
    assert live_pods(fake_runpod) == []


# ---------------------------------------------------------------- pod: refresh, update, delete
def test_refresh_reports_preemption_then_drops_a_vanished_pod(deploy, fake_runpod, reachable):
    d = deploy()
    vol_id, _ = d.create_volume()
    pod_id, outs = d.create_pod(vol_id)

    fake_runpod.preempt(pod_id)
    read = d.pod.read(pod_id, outs)
    assert read.id == pod_id
    assert read.outs["status"] == EXITED and read.outs["preempted"] is True
    assert read.outs["last_status_change"].startswith("Outbid")
    assert read.outs["ssh_host"] is None and read.outs["ssh_port"] is None
    assert read.outs["market"] == "spot" and read.outs["image"] == outs["image"]

    fake_runpod.preempt(pod_id, terminate=True)  # RunPod took the machine for good
    gone = d.pod.read(pod_id, engine_shape(read.outs))
    assert gone.id is None  # the next `pulumi up` recreates it


def test_bid_change_updates_in_place_without_touching_the_pod(deploy, fake_runpod, reachable):
    d = deploy()
    vol_id, _ = d.create_volume()
    pod_id, outs = d.create_pod(vol_id)
    before = len(fake_runpod.billable_calls())
    news = d.pod_inputs(vol_id, bid_per_gpu=0.6)
    diff = d.pod.diff(pod_id, outs, news)
    assert diff.changes is True and diff.replaces == []
    updated = d.pod.update(pod_id, outs, news).outs
    assert updated["bid_per_gpu"] == 0.6 and updated["pod_id"] == pod_id and updated["ssh_host"]
    assert len(fake_runpod.billable_calls()) == before
    image_diff = d.pod.diff(pod_id, outs, d.pod_inputs(vol_id, image="other:1"))
    assert image_diff.replaces == ["image"] and image_diff.delete_before_replace is True


def test_destroy_terminates_and_tolerates_a_pod_already_gone(deploy, fake_runpod, reachable):
    d = deploy()
    vol_id, vol_outs = d.create_volume()
    pod_id, outs = d.create_pod(vol_id)
    d.pod.delete(pod_id, outs)
    assert fake_runpod.pods.get(pod_id) is None or fake_runpod.pods[pod_id].status == TERMINATED
    d.pod.delete(pod_id, outs)  # already gone: fine
    d.volume.delete(vol_id, vol_outs)  # the volume is free now
    assert vol_id not in fake_runpod.volumes


def test_the_key_never_reaches_the_serialized_providers(deploy, fake_runpod):
    d = deploy()
    for blob in d.blobs.values():
        raw = base64.b64decode(blob)
        assert fake_runpod.api_key.encode() not in raw
        assert vars(dill.loads(raw)) == {}
    # configure() has run: the instances are still empty and re-serialize to the same blob.
    from pulumi.dynamic.dynamic import serialize_provider

    for kind, provider in d.providers.items():
        assert vars(provider) == {} and serialize_provider(provider) == d.blobs[kind]


def test_spot_withdrawn_with_fallback_creates_an_on_demand_pod(deploy, fake_runpod, reachable):
    # The likeliest real-world case: RunPod removed spot. The price query loses minimumBidPrice with
    # it, yet the on-demand price still answers, so the fallback can check the cap and go ahead.
    d = deploy(spotFallback="on-demand", maxOnDemandPricePerGpu="0.70")  # fake's 4090: 0.69
    vol_id, _ = d.create_volume()
    fake_runpod.remove_spot()
    pod_id, outs = d.create_pod(vol_id)
    assert outs["market"] == "on-demand" and fake_runpod.pods[pod_id].interruptible is False
    assert [p.id for p in live_pods(fake_runpod)] == [pod_id]


# ---------------------------------------------------------------- GraphQL retired (410 Gone on /graphql)
def test_graphql_retired_without_fallback_creates_nothing_and_says_what_to_set(deploy, fake_runpod):
    d = deploy()  # spotFallback: fail
    vol_id, _ = d.create_volume()  # volumes are REST v2: unaffected
    fake_runpod.retire_graphql()
    with pytest.raises(life.PodCreateError) as err:
        d.create_pod(vol_id)
    text = str(err.value)
    assert "retired its GraphQL API" in text and "Nothing was created" in text
    assert "pulumi config set spotFallback on-demand" in text and "maxOnDemandPricePerGpu" in text
    assert live_pods(fake_runpod) == []
    assert_no_key(fake_runpod, text)


def test_graphql_retired_with_fallback_creates_an_on_demand_pod_priced_by_the_v2_catalog(
    deploy, fake_runpod, reachable
):
    d = deploy(spotFallback="on-demand", maxOnDemandPricePerGpu="0.70")  # fake's 4090: 0.69
    vol_id, _ = d.create_volume()
    fake_runpod.retire_graphql()
    pod_id, outs = d.create_pod(vol_id)
    assert outs["market"] == "on-demand" and fake_runpod.pods[pod_id].interruptible is False
    assert outs["ssh_host"] == reachable.host and outs["status"] == RUNNING
    assert [p.id for p in live_pods(fake_runpod)] == [pod_id]
    assert any(r.path.startswith("/v2/catalog/gpus/") for r in fake_runpod.requests)  # the price check

    read = d.pod.read(pod_id, outs)  # `pulumi refresh` without GraphQL
    assert read.id == pod_id and read.outs["market"] == "on-demand" and read.outs["status"] == RUNNING
    d.pod.delete(pod_id, outs)  # `pulumi destroy` too
    assert live_pods(fake_runpod) == []


def test_graphql_retired_fallback_still_honours_the_cap(deploy, fake_runpod):
    d = deploy(spotFallback="on-demand", maxOnDemandPricePerGpu="0.60")
    vol_id, _ = d.create_volume()
    fake_runpod.retire_graphql()
    with pytest.raises(life.PodCreateError, match="above maxOnDemandPricePerGpu=0.6"):
        d.create_pod(vol_id)
    assert live_pods(fake_runpod) == []
