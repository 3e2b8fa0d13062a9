"""RunPodClient against the fake RunPod API: every operation, every error class, retries, key hygiene."""

from __future__ import annotations

import dataclasses
import json
import pickle
import socket
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backends.runpod import models as runpod_models
from backends.runpod.client import RunPodClient
from backends.runpod.errors import (
    AuthError,
    BidTooLow,
    InvalidAction,
    NoCapacity,
    NotFound,
    RateLimited,
    RunPodError,
    SpotUnavailable,
    TransientError,
    VolumeInUse,
    _classify,
)
from backends.runpod.models import NetworkVolume, PodSpec, SshEndpoint, _pod_from_v2

GPU = "NVIDIA GeForce RTX 4090"


class Sleeps(list):
    """Injected sleep: records the delays instead of sleeping (picklable enough for these tests)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake_runpod, sleeps) -> RunPodClient:
    return fake_runpod.client(sleep=sleeps, timeout=2.0)


@pytest.fixture
def volume(fake_runpod):
    return fake_runpod.add_volume(name="ckpt", size=50, data_center="EU-RO-1")


def spec(volume_id: str | None = None, *, name: str = "trainer", dc: str = "EU-RO-1", **kw) -> PodSpec:
    return PodSpec(
        name=name,
        image="runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        gpu_type=GPU,
        gpu_count=1,
        data_center=dc,
        volume_id=volume_id,
        container_disk_gb=30,
        env={"PUBLIC_KEY": "ssh-ed25519 AAAAC3Nza me@host"},
        **kw,
    )


def assert_key_absent(fake, *texts: str) -> None:
    for t in texts:
        assert fake.api_key not in t


def client_frames(ei) -> str:
    """The traceback below the test function (which holds the key itself), with every frame's locals."""
    te = traceback.TracebackException(ei.type, ei.value, ei.tb.tb_next, capture_locals=True)
    text = "".join(te.format())
    assert "backends/runpod/client.py" in text
    return text


# ---------------------------------------------------------------- construction and key hygiene
def test_from_env_reads_key_and_url_overrides(fake_runpod, monkeypatch):
    for k, v in fake_runpod.env().items():
        monkeypatch.setenv(k, v)
    c = RunPodClient.from_env()
    assert c.rest_url == fake_runpod.rest_url and c.graphql_url == fake_runpod.graphql_url
    assert c.list_pods() == []


def test_from_env_without_key_is_an_actionable_auth_error(monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    with pytest.raises(AuthError, match="RUNPOD_API_KEY"):
        RunPodClient.from_env()


def test_defaults_point_at_the_documented_endpoints():
    c = RunPodClient("k" * 20)
    assert c.rest_url == "https://api.runpod.io" and c.graphql_url == "https://api.runpod.io/graphql"
    assert RunPodClient("k" * 20, rest_url="https://api.runpod.io/v2/").rest_url == "https://api.runpod.io"


def test_repr_str_and_pickle_never_contain_the_key(fake_runpod, monkeypatch):
    c = fake_runpod.client()
    for text in (repr(c), str(c), repr(vars(c))):
        assert_key_absent(fake_runpod, text)
    blob = pickle.dumps(c)
    assert fake_runpod.api_key.encode() not in blob
    # an unpickled client takes the key from the environment at call time
    monkeypatch.setenv("RUNPOD_API_KEY", fake_runpod.api_key)
    assert pickle.loads(blob).list_pods() == []
    monkeypatch.delenv("RUNPOD_API_KEY")
    with pytest.raises(AuthError, match="RUNPOD_API_KEY"):
        pickle.loads(blob).list_pods()


def test_key_travels_only_in_the_authorization_header(fake_runpod, client, volume):
    pod = client.create_spot_pod(spec(volume.id), 0.3)
    client.get_pod(pod.id, with_history=True)
    client.spot_price(GPU, 1, "EU-RO-1")
    client.stop_pod(pod.id)
    assert fake_runpod.requests and all(fake_runpod.api_key not in r.path for r in fake_runpod.requests)
    assert all(r.auth == "account" for r in fake_runpod.requests)
    assert fake_runpod.violations == []


def test_wrong_key_is_auth_error_without_the_key_in_text_or_traceback_locals(fake_runpod):
    secret = "rpa_WRONG_" + "x" * 24
    c = RunPodClient(secret, rest_url=fake_runpod.rest_url, graphql_url=fake_runpod.graphql_url)
    for call in (lambda: c.list_pods(), lambda: c.spot_price(GPU, 1, None)):
        with pytest.raises(AuthError) as ei:
            call()
        assert ei.value.status == 401
        formatted = client_frames(ei)
        assert secret not in formatted and secret not in str(ei.value) and secret not in repr(ei.value)
        assert "RUNPOD_API_KEY" in str(ei.value)


def test_transient_error_traceback_locals_do_not_show_the_key(fake_runpod, sleeps):
    c = fake_runpod.client(sleep=sleeps, max_retries=1)
    fake_runpod.inject("rest:GET /v2/pods", "transient", count=5)
    with pytest.raises(TransientError) as ei:
        c.list_pods()
    formatted = client_frames(ei)
    assert_key_absent(fake_runpod, formatted, str(ei.value))


# ---------------------------------------------------------------- pods
def test_spot_pod_lifecycle(fake_runpod, client, volume):
    fake_runpod.set_ssh_target("127.0.0.1", [2201, 2202])
    pod = client.create_spot_pod(spec(volume.id), 0.3)
    assert pod.interruptible is True and pod.status in ("PROVISIONING", "STARTING", "RUNNING")
    assert pod.volume_id == volume.id and pod.data_center == "EU-RO-1" and pod.gpu_count == 1
    assert pod.last_status_change.startswith("Rented by User: ")
    fp = fake_runpod.pods[pod.id]
    assert fp.interruptible and fp.bid_per_gpu == 0.3 and fp.cloud == "SECURE" and fp.volume_mount_path == "/workspace"
    assert fp.env == {"PUBLIC_KEY": "ssh-ed25519 AAAAC3Nza me@host"} and fp.ports == ["22/tcp"]

    running = fake_runpod.wait_for(lambda: (p := client.get_pod(pod.id)).is_running and p)
    assert running.ssh == SshEndpoint("127.0.0.1", 2201, "root")
    assert running.cost_per_hr == pytest.approx(0.3)

    stopped = client.stop_pod(pod.id)
    assert stopped.status == "EXITED" and stopped.ssh is None and stopped.cost_per_hr == 0.0
    hist = client.get_pod(pod.id, with_history=True)
    assert hist.last_status_change.startswith("Exited by user: ") and hist.interruptible is True
    assert hist.desired_status == "EXITED" and hist.pod_type == "INTERRUPTABLE" and not hist.was_outbid

    client.resume_spot_pod(pod.id, 0.35, 1)
    again = fake_runpod.wait_for(lambda: (p := client.get_pod(pod.id)).is_running and p)
    assert again.ssh.port == 2202 and again.started_at != running.started_at
    assert fake_runpod.pods[pod.id].bid_per_gpu == 0.35

    fake_runpod.preempt(pod.id)
    outbid = client.get_pod(pod.id, with_history=True)
    assert outbid.status == "EXITED" and outbid.was_outbid

    client.terminate_pod(pod.id)
    assert client.find_pod(pod.id) is None
    with pytest.raises(NotFound):
        client.get_pod(pod.id)
    with pytest.raises(NotFound):
        client.terminate_pod(pod.id)


def test_on_demand_pod_lifecycle(fake_runpod, client, volume):
    fake_runpod.boot_seconds = 0
    pod = client.create_on_demand_pod(spec(volume.id))
    assert pod.interruptible is False and pod.volume_id == volume.id
    assert [p.id for p in client.list_pods()] == [pod.id]
    assert client.list_pods(name="other") == []
    assert client.get_pod(pod.id, with_history=True).interruptible is False
    stopped = client.stop_pod(pod.id)
    assert stopped.status == "EXITED"
    assert client.stop_pod(pod.id).status == "EXITED"  # stopping a stopped pod is a no-op
    started = client.start_pod(pod.id)
    assert started.status in ("PROVISIONING", "STARTING", "RUNNING")
    with pytest.raises(InvalidAction) as ei:
        client.start_pod(pod.id)  # RUNNING: start is not an allowed action
    assert ei.value.status == 409 and "Action not valid" in ei.value.message
    client.terminate_pod(pod.id)
    assert fake_runpod.pods[pod.id].status == "TERMINATED"


def test_history_is_empty_when_graphql_no_longer_knows_the_pod(fake_runpod, client, monkeypatch):
    p = fake_runpod.add_pod(name="x")
    monkeypatch.setattr(fake_runpod.gql, "r_pod", lambda inp, f: None)
    got = client.get_pod(p.id, with_history=True)
    assert got.status == "RUNNING" and got.last_status_change is None and got.interruptible is None


def test_spot_price(client):
    price = client.spot_price(GPU, 1, "EU-RO-1")
    assert price.minimum_bid_per_gpu == pytest.approx(0.20)
    assert price.on_demand_price_per_gpu == pytest.approx(0.69) and price.stock_status == "High"
    with pytest.raises(NotFound, match="unknown GPU type"):
        client.spot_price("NVIDIA Imaginary 9000", 1, None)


def test_spot_price_after_spot_is_withdrawn_still_gives_the_on_demand_price(fake_runpod, client):
    fake_runpod.remove_spot()
    price = client.spot_price(GPU, 1, "EU-RO-1")
    assert price.minimum_bid_per_gpu is None
    assert price.on_demand_price_per_gpu == pytest.approx(0.69)


def test_bad_input_fails_before_any_request(fake_runpod, client):
    with pytest.raises(ValueError, match="Secure Cloud"):
        client.create_spot_pod(spec("vol1", cloud_type="COMMUNITY"), 0.3)
    with pytest.raises(ValueError, match="EU-RO-1"):
        client.create_on_demand_pod(spec(None, dc="eu-ro-1"))
    with pytest.raises(ValueError, match="bid_per_gpu"):
        client.create_spot_pod(spec(None), 0)
    with pytest.raises(ValueError, match="gpu_count"):
        client.resume_spot_pod("abc", 0.3, 0)
    with pytest.raises(ValueError, match="between 10 and 4096"):
        client.create_network_volume("v", 5, "EU-RO-1")
    with pytest.raises(ValueError, match="name and/or size"):
        client.update_network_volume("abc")
    assert fake_runpod.requests == []


# ---------------------------------------------------------------- network volumes
def test_three_letter_region_data_centers_are_accepted(fake_runpod, client):
    vol = client.create_network_volume("v", 10, "EUR-IS-1")
    pod = client.create_on_demand_pod(spec(vol.id, dc="EUR-IS-1"))
    assert pod.data_center == "EUR-IS-1"


def test_network_volume_crud(fake_runpod, client):
    vol = client.create_network_volume("ckpt", 100, "EU-RO-1")
    assert vol == NetworkVolume(vol.id, "ckpt", 100, "EU-RO-1", "STANDARD")
    assert client.get_network_volume(vol.id) == vol
    assert client.list_network_volumes() == [vol]
    grown = client.update_network_volume(vol.id, size_gb=150, name="ckpt2")
    assert (grown.size_gb, grown.name) == (150, "ckpt2")
    with pytest.raises(RunPodError, match="only increase") as ei:
        client.update_network_volume(vol.id, size_gb=120)
    assert ei.value.status == 400 and type(ei.value) is RunPodError
    pod = fake_runpod.add_pod(volume_id=vol.id, status="EXITED")
    with pytest.raises(VolumeInUse) as ei:
        client.delete_network_volume(vol.id)
    assert "remove this network volume" in ei.value.message and "terminate" in str(ei.value)
    client.terminate_pod(pod.id)
    client.delete_network_volume(vol.id)
    assert client.find_network_volume(vol.id) is None
    with pytest.raises(NotFound):
        client.delete_network_volume(vol.id)
    with pytest.raises(NotFound):
        client.get_network_volume(vol.id)


def test_volume_in_community_style_data_center_is_rejected_by_the_server(client):
    with pytest.raises(RunPodError, match="does not support STANDARD network volumes") as ei:
        client.create_network_volume("v", 20, "CZ")
    assert ei.value.status == 400


def test_volume_in_a_data_center_that_does_not_exist_is_refused(client, fake_runpod):
    with pytest.raises(RunPodError, match="supported data centers: EU-RO-1") as ei:
        client.create_network_volume("v", 20, "EU-XX-9")  # well-formed, but no such data center
    assert ei.value.status == 400 and fake_runpod.volumes == {}


# ---------------------------------------------------------------- error classes
def test_no_capacity_spot_and_on_demand(fake_runpod, client, volume):
    fake_runpod.inject("podRentInterruptable", "no_capacity")
    with pytest.raises(NoCapacity, match="no longer any instances"):
        client.create_spot_pod(spec(volume.id), 0.3)
    fake_runpod.inject("rest:POST /v2/pods", "no_capacity")
    with pytest.raises(NoCapacity) as ei:
        client.create_on_demand_pod(spec(volume.id))
    assert ei.value.status == 400 and "on-demand" in str(ei.value)
    with pytest.raises(NoCapacity):  # unknown GPU type: the scheduler finds nothing
        client.create_on_demand_pod(dataclasses.replace(spec(None), gpu_type="Nope"))
    assert fake_runpod.live_pods() == []


def test_not_enough_gpus_on_host_when_resuming(fake_runpod, client):
    pod = fake_runpod.add_pod(status="EXITED", interruptible=True)
    fake_runpod.inject("podBidResume", "not_enough_gpus_on_host")
    with pytest.raises(NoCapacity, match="not enough free GPUs"):
        client.resume_spot_pod(pod.id, 0.3, 1)
    assert fake_runpod.pods[pod.id].status == "EXITED"


def test_spot_unavailable_when_the_spot_api_is_gone(fake_runpod, client, volume):
    fake_runpod.remove_spot()
    pod = fake_runpod.add_pod(status="EXITED")
    with pytest.raises(SpotUnavailable, match='Cannot query field "podRentInterruptable"') as ei:
        client.create_spot_pod(spec(volume.id), 0.3)
    assert "on-demand" in str(ei.value)
    with pytest.raises(SpotUnavailable, match="podBidResume"):
        client.resume_spot_pod(pod.id, 0.3, 1)
    assert client.spot_price(GPU, 1, "EU-RO-1").minimum_bid_per_gpu is None
    assert client.create_on_demand_pod(spec(volume.id)).interruptible is False


def test_invalid_action_spot_vs_on_demand(fake_runpod, client):
    spot = fake_runpod.add_pod(status="EXITED", interruptible=True)
    with pytest.raises(InvalidAction, match="Cannot resume a spot pod as an on demand pod."):
        client.start_pod(spot.id)
    on_demand = fake_runpod.add_pod(status="EXITED", interruptible=False)
    with pytest.raises(InvalidAction, match="on demand pod as a spot pod"):
        client.resume_spot_pod(on_demand.id, 0.3, 1)


def test_bid_below_minimum_is_bid_too_low(fake_runpod, client, volume):
    with pytest.raises(BidTooLow, match="minimum bid"):
        client.create_spot_pod(spec(volume.id), 0.05)
    pod = fake_runpod.add_pod(status="EXITED")
    with pytest.raises(BidTooLow):
        client.resume_spot_pod(pod.id, 0.05, 1)


def test_rule_violation_400_and_unknown_field_422_carry_the_server_message(fake_runpod, client, volume):
    with pytest.raises(RunPodError, match="same data center") as ei:
        client.create_on_demand_pod(spec(volume.id, dc="US-KS-2"))
    assert ei.value.status == 400 and type(ei.value) is RunPodError
    with fake_runpod.off_spec(), pytest.raises(RunPodError, match="'dataCenterId' not allowed") as ei:
        client._rest(
            "POST",
            "/v2/network-volumes",
            {"name": "v", "size": 10, "dataCenterId": "EU-RO-1"},
            operation="create network volume",
        )
    assert ei.value.status == 422


def test_rate_limit_honours_retry_after_then_succeeds(fake_runpod, client, sleeps):
    fake_runpod.inject("rest:GET /v2/pods", "rate_limit", count=2, retry_after=3)
    assert client.list_pods() == []
    assert sleeps == [3, 3]


def test_rate_limit_exhausted_raises_rate_limited(fake_runpod, sleeps):
    c = fake_runpod.client(sleep=sleeps, max_retries=2)
    fake_runpod.inject("gpuTypes", "rate_limit", count=10, retry_after=2)
    with pytest.raises(RateLimited) as ei:
        c.spot_price(GPU, 1, None)
    assert ei.value.retry_after == 2 and ei.value.status == 429 and sleeps == [2, 2]


def test_retry_after_beyond_the_bound_is_not_slept(fake_runpod, client, sleeps):
    fake_runpod.inject("rest:GET /v2/pods", "rate_limit", retry_after=3600)
    with pytest.raises(RateLimited) as ei:
        client.list_pods()
    assert ei.value.retry_after == 3600 and sleeps == []


def test_transient_errors_are_retried_with_exponential_backoff(fake_runpod, client, sleeps):
    fake_runpod.inject("rest:GET /v2/pods", "transient", count=3)
    assert client.list_pods() == []
    assert sleeps == [0.5, 1.0, 2.0]


def test_transient_errors_exhausted(fake_runpod, sleeps):
    c = fake_runpod.client(sleep=sleeps, max_retries=2)
    fake_runpod.inject("pod", "transient", count=10)
    p = fake_runpod.add_pod()
    with pytest.raises(TransientError) as ei:
        c.get_pod(p.id, with_history=True)
    assert ei.value.status == 502 and "3 attempts" in str(ei.value) and len(sleeps) == 2


def test_timeout_and_dropped_connection_on_reads_are_retried(fake_runpod, sleeps):
    fake_runpod.hang_seconds = 1.0
    c = fake_runpod.client(sleep=sleeps, timeout=0.2)
    fake_runpod.inject("rest:GET /v2/network-volumes", "timeout")
    fake_runpod.inject("rest:GET /v2/network-volumes", "drop_before")
    assert c.list_network_volumes() == []
    assert len(sleeps) == 2


def test_connection_refused_is_transient(sleeps):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = RunPodClient(
        "k" * 20,
        rest_url=f"http://127.0.0.1:{port}",
        graphql_url=f"http://127.0.0.1:{port}/graphql",
        sleep=sleeps,
        max_retries=2,
    )
    with pytest.raises(TransientError, match="cannot connect"):
        c.list_pods()
    assert len(sleeps) == 2


# ---------------------------------------------------------------- non-idempotent creates
def test_ambiguous_spot_create_adopts_the_pod_instead_of_renting_twice(fake_runpod, client, volume):
    fake_runpod.inject("podRentInterruptable", "drop_after")
    pod = client.create_spot_pod(spec(volume.id), 0.3)
    assert [p.id for p in fake_runpod.live_pods()] == [pod.id]
    assert pod.interruptible is True
    assert len([r for r in fake_runpod.requests if r.operation == "podRentInterruptable"]) == 1


def test_ambiguous_on_demand_create_after_server_error_adopts_the_pod(fake_runpod, client, volume):
    fake_runpod.inject("rest:POST /v2/pods", "server_error_after")
    pod = client.create_on_demand_pod(spec(volume.id))
    assert [p.id for p in fake_runpod.live_pods()] == [pod.id]
    assert len(fake_runpod.billable_calls()) == 1


def test_create_is_retried_when_the_server_did_not_act(fake_runpod, client, volume):
    existing = fake_runpod.add_pod(name="trainer", status="EXITED")  # same name, must not be adopted
    fake_runpod.inject("rest:POST /v2/pods", "transient")
    fake_runpod.inject("rest:POST /v2/pods", "drop_before")
    pod = client.create_on_demand_pod(spec(volume.id))
    assert pod.id != existing.id
    assert sorted(p.id for p in fake_runpod.live_pods()) == sorted([pod.id, existing.id])
    assert len([r for r in fake_runpod.billable_calls() if r.path == "/v2/pods"]) == 3


def test_ambiguous_create_that_keeps_failing_says_it_may_have_taken_effect(fake_runpod, sleeps, volume):
    c = fake_runpod.client(sleep=sleeps, max_retries=1)
    fake_runpod.inject("rest:POST /v2/pods", "transient", count=5)
    with pytest.raises(TransientError, match="may have taken effect"):
        c.create_on_demand_pod(spec(volume.id))
    assert fake_runpod.live_pods() == []


def test_ambiguous_volume_create_stop_resume_terminate_delete(fake_runpod, client):
    fake_runpod.inject("rest:POST /v2/network-volumes", "drop_after")
    vol = client.create_network_volume("ckpt", 20, "EU-RO-1")
    assert list(fake_runpod.volumes) == [vol.id]

    fake_runpod.boot_seconds = 0
    pod = fake_runpod.add_pod(volume_id=vol.id)
    fake_runpod.inject("rest:POST /v2/pods/*/action", "drop_after")
    assert client.stop_pod(pod.id).status == "EXITED"
    fake_runpod.inject("podBidResume", "drop_after")
    client.resume_spot_pod(pod.id, 0.3, 1)
    assert fake_runpod.pods[pod.id].start_count == 2
    fake_runpod.inject("rest:DELETE /v2/pods/*", "drop_after")
    client.terminate_pod(pod.id)  # no NotFound for our own earlier success
    fake_runpod.inject("rest:DELETE /v2/network-volumes/*", "server_error_after")
    client.delete_network_volume(vol.id)
    assert fake_runpod.volumes == {}


# ---------------------------------------------------------------- parsing and classification
def _v2(status="RUNNING", direct=None, runtime_ports=None):
    return {
        "id": "p1",
        "name": "n",
        "status": status,
        "gpu": {"id": GPU, "count": 2},
        "cost": 0.5,
        "dataCenterId": "EU-RO-1",
        "mounts": {"network": [{"volumeId": "v1", "path": "/workspace"}]},
        "ssh": {"proxy": None, "direct": direct},
        "runtime": {"uptime": 1, "ports": runtime_ports or []},
        "startedAt": "t",
    }


def test_ssh_endpoint_from_direct_then_runtime_ports_only_when_running():
    direct = {"host": "1.2.3.4", "port": 4000, "username": "root", "command": "ssh"}
    ports = [
        {"private": 8888, "public": 1, "type": "http", "ip": "9.9.9.9"},
        {"private": 22, "public": 5000, "type": "tcp", "ip": "5.6.7.8"},
    ]
    assert _pod_from_v2(_v2(direct=direct, runtime_ports=ports)).ssh == SshEndpoint("1.2.3.4", 4000)
    assert _pod_from_v2(_v2(runtime_ports=ports)).ssh == SshEndpoint("5.6.7.8", 5000)
    assert _pod_from_v2(_v2(status="EXITED", direct=direct, runtime_ports=ports)).ssh is None
    p = _pod_from_v2(_v2())
    assert (p.ssh, p.gpu_count, p.volume_id, p.data_center) == (None, 2, "v1", "EU-RO-1")


@pytest.mark.parametrize(
    "message, cls",
    [
        (
            "There are no longer any instances available with the requested specifications. Please refresh and try again.",
            NoCapacity,
        ),
        (
            "There are no longer any instances available with the request specifications. Please try again later.",
            NoCapacity,
        ),
        ("There are no instances available with the request specifications. Please try again later.", NoCapacity),
        ("There are no longer any instances available with enough disk space.", NoCapacity),
        ("There are not enough free GPUs on the host machine to start this pod.", NoCapacity),
        # The phrases RunPod's own SDK treats as capacity (runpod 2.0.0rc2, apps/api.py is_capacity_error):
        ("Could not find any resources to deploy your pod", NoCapacity),
        ("Insufficient capacity for the requested GPU type", NoCapacity),
        ("No available machine matches this request", NoCapacity),
        ("NVIDIA GeForce RTX 4090 is out of stock in EU-RO-1", NoCapacity),
        ("Cannot resume a spot pod as an on demand pod.", InvalidAction),
        ("pod not found to terminate", NotFound),
        ("Tried to delete nonexistent network volume", NotFound),
        ("You must remove this network volume from all pods before deleting it.", VolumeInUse),
        ("Something went wrong. Please try again later or contact support.", RunPodError),
        ("Failed to find data center, please try again.", RunPodError),
    ],
)
def test_message_classification(message, cls):
    assert _classify(message) is cls


@pytest.mark.parametrize(
    "message",
    [
        'Cannot query field "podRentInterruptable" on type "Mutation".',
        'Unknown argument "bidPerGpu" on field "Mutation.podBidResume".',
        'Field "bidPerGpu" is not defined by type "PodRentInterruptableInput".',
    ],
)
def test_schema_errors_on_spot_operations_are_spot_unavailable(message):
    assert _classify(message, spot_op=True) is SpotUnavailable
    assert _classify(message, spot_op=False) is RunPodError


# ---------------------------------------------------------------- odd server answers (stub server)
class _Stub:
    """A one-answer HTTP server for replies the fake never gives (echoed key, 402, non-JSON 5xx)."""

    def __init__(self, status: int, body: bytes, headers: dict | None = None):
        stub = self
        self.seen: list[str] = []

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _any(self):
                stub.seen.append(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_PATCH = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_server_echoing_the_key_is_scrubbed():
    key = "rpa_SECRET_" + "z" * 20
    stub = _Stub(400, json.dumps({"title": "Bad Request", "status": 400, "detail": f"bad key {key}"}).encode())
    try:
        c = RunPodClient(key, rest_url=stub.url, graphql_url=stub.url + "/graphql")
        with pytest.raises(RunPodError) as ei:
            c.list_pods()
        assert key not in str(ei.value) and key not in ei.value.message and "<redacted>" in ei.value.message
    finally:
        stub.close()


def test_402_insufficient_balance_says_what_to_do():
    stub = _Stub(
        402, json.dumps({"title": "Payment Required", "status": 402, "detail": "insufficient balance"}).encode()
    )
    try:
        c = RunPodClient("k" * 20, rest_url=stub.url, graphql_url=stub.url + "/graphql")
        with pytest.raises(RunPodError, match="add credit") as ei:
            c.create_network_volume("v", 10, "EU-RO-1")
        assert ei.value.status == 402 and ei.value.message == "insufficient balance"
    finally:
        stub.close()


def test_non_json_5xx_and_non_integer_retry_after(sleeps):
    stub = _Stub(429, b"slow down", {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})
    try:
        c = RunPodClient("k" * 20, rest_url=stub.url, graphql_url=stub.url + "/graphql", sleep=sleeps, max_retries=1)
        with pytest.raises(RateLimited) as ei:
            c.list_pods()
        assert ei.value.retry_after is None and sleeps == [0.5] and ei.value.message == "slow down"
    finally:
        stub.close()


def test_graphql_400_with_errors_is_classified(sleeps):
    body = json.dumps(
        {"errors": [{"message": 'Field "PodBidResumeInput.gpuCount" of required type "Int!" was not provided.'}]}
    )
    stub = _Stub(400, body.encode())
    try:
        c = RunPodClient("k" * 20, rest_url=stub.url, graphql_url=stub.url + "/graphql", sleep=sleeps)
        with pytest.raises(SpotUnavailable) as ei:
            c.resume_spot_pod("p", 0.3, 1)
        assert ei.value.status == 400
    finally:
        stub.close()


def test_a_409_on_a_volume_delete_is_volume_in_use_whatever_its_text(fake_runpod, client):
    """The spec documents no answer for deleting a volume that a pod uses; a 409 ("conflict with the
    resource's state") can only mean that, and must not become a generic InvalidAction."""
    vol = fake_runpod.add_volume(name="ckpt")
    fake_runpod.add_pod(volume_id=vol.id, status="EXITED")
    fake_runpod.volume_in_use_status = 409
    with pytest.raises(VolumeInUse) as ei:
        client.delete_network_volume(vol.id)
    assert ei.value.status == 409 and "terminate every pod that mounts this network volume" in str(ei.value)
    assert vol.id in fake_runpod.volumes


def test_on_demand_price_per_gpu_from_the_stacks_cloud(fake_runpod, client):
    secure = client.on_demand_price(GPU, 2, "EU-RO-1")
    assert (secure.per_gpu, secure.price_field, secure.stock) == (0.69, "price.secure", "HIGH")
    assert secure.per_hour == pytest.approx(1.38)  # the list price is per single GPU, times the count
    community = client.on_demand_price(GPU, 1, "EU-RO-1", "COMMUNITY")
    assert (community.per_gpu, community.price_field) == (0.49, "price.community")
    (req,) = [r for r in fake_runpod.requests if r.path.startswith("/v2/catalog/gpus/")][-1:]
    assert req.status == 200


@pytest.mark.parametrize(
    "answer, shown",
    [
        ({"id": GPU, "securePrice": 0.69}, "absent"),  # the field this client once read: not RunPod's
        ({"id": GPU, "price": {"community": 0.31}}, "absent"),
        ({"id": GPU, "price": {"secure": None, "community": 0.31}}, "absent"),
        ({"id": GPU, "price": {"secure": "0.44", "community": 0.31}}, "'0.44'"),
        ({"id": GPU, "price": {"secure": 0, "community": 0.31}}, "0"),
    ],
)
def test_an_absent_or_unusable_catalog_price_is_an_error_naming_the_field(answer, shown):
    with pytest.raises(RunPodError) as ei:
        runpod_models._catalog_price_from_v2(answer, GPU, "SECURE", 1, "EU-RO-1")
    assert f"no usable `price.secure` for {GPU} ({shown})" in ei.value.message
