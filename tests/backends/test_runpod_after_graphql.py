"""RunPodClient after RunPod retires GraphQL (410 Gone "in early 2027"), and the REST v2 parts that replace it:
every spot operation raises the typed SpotUnavailable (GraphQLGone), pod reads keep working on v2 alone,
lists follow the cursor pages, and the on-demand price and stock come from the v2 catalog."""

from __future__ import annotations

import pytest

from backends.runpod.client import RunPodClient
from backends.runpod.errors import GraphQLGone, NotFound, RunPodError, SpotUnavailable
from backends.runpod.models import PodSpec

GPU = "NVIDIA GeForce RTX 4090"


@pytest.fixture
def client(fake_runpod) -> RunPodClient:
    return fake_runpod.client(sleep=lambda _s: None, timeout=2.0)


def spec(volume_id: str | None, *, name: str = "trainer", dc: str = "EU-RO-1") -> PodSpec:
    return PodSpec(
        name=name,
        image="runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        gpu_type=GPU,
        gpu_count=1,
        data_center=dc,
        volume_id=volume_id,
        container_disk_gb=30,
    )


def graphql_gone_clients(fake):
    """The three ways /graphql can be gone: 410 (the announced one), 404 and 405."""
    yield 410, fake.client(sleep=lambda _s: None)
    yield (
        404,
        RunPodClient(
            fake.api_key, rest_url=fake.rest_url, graphql_url=fake.url + "/graphql-was-here", sleep=lambda _s: None
        ),
    )
    yield (
        405,
        RunPodClient(
            fake.api_key, rest_url=fake.rest_url, graphql_url=fake.url + "/v2/pods/nope", sleep=lambda _s: None
        ),
    )


def test_every_spot_operation_is_spot_unavailable_when_graphql_is_gone(fake_runpod):
    vol = fake_runpod.add_volume(name="ckpt", data_center="EU-RO-1")
    stopped = fake_runpod.add_pod(name="old", status="EXITED", volume_id=vol.id)
    fake_runpod.retire_graphql()
    for status, client in graphql_gone_clients(fake_runpod):
        for call in (
            lambda: client.create_spot_pod(spec(vol.id), 0.3),
            lambda: client.resume_spot_pod(stopped.id, 0.3, 1),
            lambda: client.spot_price(GPU, 1, "EU-RO-1"),
        ):
            with pytest.raises(GraphQLGone) as ei:
                call()
            err = ei.value
            assert isinstance(err, SpotUnavailable) and err.status == status
            text = str(err)
            # The client says what RunPod did and which market is left; what to set in the stack's config is
            # said by its users (infra/advice.py: the provider's and the runner's errors, tested there).
            assert "GraphQL API is gone" in text and "use the on-demand market" in text
            assert fake_runpod.api_key not in text
    assert [p.id for p in fake_runpod.live_pods()] == [stopped.id]  # nothing was rented
    assert fake_runpod.pods[stopped.id].status == "EXITED"  # nothing was resumed
    gone = [r for r in fake_runpod.requests if r.path == "/graphql"]
    assert gone and {r.status for r in gone} == {410}


def test_reading_a_pod_never_needs_graphql(fake_runpod, client):
    pod = fake_runpod.add_pod(name="trainer", status="RUNNING")
    fake_runpod.retire_graphql()
    read = client.get_pod(pod.id, with_history=True)
    assert read.id == pod.id and read.status == "RUNNING" and read.ssh is not None
    assert read.last_status_change is None and read.interruptible is None  # v2 has neither
    fake_runpod.preempt(pod.id)
    assert client.find_pod(pod.id, with_history=True).status == "EXITED"
    assert client.stop_pod(fake_runpod.add_pod(status="RUNNING").id).status == "EXITED"  # v2 stop


def test_a_rate_limited_history_read_returns_the_v2_pod_at_once(fake_runpod):
    waits: list[float] = []
    client = fake_runpod.client(sleep=waits.append)
    pod = fake_runpod.add_pod(name="trainer", status="EXITED")
    fake_runpod.inject("pod", "rate_limit", count=10, retry_after=5)  # GraphQL's staged limits
    read = client.get_pod(pod.id, with_history=True)
    assert read.status == "EXITED" and read.last_status_change is None
    assert waits == [] and len([r for r in fake_runpod.requests if r.path == "/graphql"]) == 1  # no waiting
    fake_runpod.clear_injections()
    assert client.get_pod(pod.id, with_history=True).last_status_change.startswith("Exited by user")


def test_a_schema_without_the_spot_mutations_is_still_spot_unavailable(fake_runpod, client):
    vol = fake_runpod.add_volume(name="ckpt", data_center="EU-RO-1")
    fake_runpod.remove_spot()
    with pytest.raises(SpotUnavailable) as ei:
        client.create_spot_pod(spec(vol.id), 0.3)
    assert not isinstance(ei.value, GraphQLGone) and "Cannot query field" in ei.value.message
    assert "use the on-demand market" in str(ei.value)


# ---------------------------------------------------------------- v2 catalog
def test_on_demand_price_and_stock_from_the_v2_catalog(fake_runpod, client):
    fake_runpod.retire_graphql()  # no GraphQL needed for any of it
    price = client.on_demand_price(GPU, 1, "EU-RO-1")
    assert price.per_gpu == 0.69 and price.price_field == "price.secure" and price.stock == "HIGH"
    assert client.on_demand_price(GPU, 1, "US-KS-2").stock == "NONE"  # no 4090 in that DC
    (req,) = [r for r in fake_runpod.requests if r.path.startswith("/v2/catalog/gpus/")][:1]
    assert req.path == f"/v2/catalog/gpus/{GPU}"
    with pytest.raises(NotFound):
        client.on_demand_price("NVIDIA Nonexistent", 1, "EU-RO-1")


def test_gpu_stock_is_per_data_center_on_create(fake_runpod, client):
    with pytest.raises(RunPodError, match="no longer any instances"):
        client.create_on_demand_pod(spec(None, dc="US-KS-2"))  # an RTX 4090 is not in every DC
    assert fake_runpod.live_pods() == []
    assert client.create_on_demand_pod(spec(None, dc="EU-RO-1")).data_center == "EU-RO-1"


# ---------------------------------------------------------------- cursor pagination
def test_lists_follow_every_cursor_page(fake_runpod, client):
    fake_runpod.page_size = 2
    pods = [fake_runpod.add_pod(name=f"p{i}", status="RUNNING") for i in range(5)]
    vols = [fake_runpod.add_volume(name=f"v{i}") for i in range(3)]
    assert [p.id for p in client.list_pods()] == [p.id for p in pods]
    assert [v.id for v in client.list_network_volumes()] == [v.id for v in vols]
    pages = [r.path for r in fake_runpod.requests if r.path == "/v2/pods"]
    assert len(pages) == 3  # 2 + 2 + 1


def test_ambiguous_create_adopts_a_pod_that_lands_beyond_the_first_page(fake_runpod, client):
    fake_runpod.page_size = 2
    vol = fake_runpod.add_volume(name="ckpt", data_center="EU-RO-1")
    for i in range(4):
        fake_runpod.add_pod(name=f"other{i}", status="RUNNING")  # the new pod is listed on page 3
    fake_runpod.inject("rest:POST /v2/pods", "drop_after")
    pod = client.create_on_demand_pod(spec(vol.id))
    assert [p.id for p in fake_runpod.live_pods() if p.name == "trainer"] == [pod.id]  # adopted, not rented twice
    assert len([r for r in fake_runpod.billable_calls() if r.path == "/v2/pods"]) == 1
