"""Provider logic with a scripted client: market policy, the create deadline, cleanup, diff rules.

No HTTP here (that is tests/infra/test_infra_providers.py against the fake API); these pin the decisions.
"""

from __future__ import annotations

import pytest
from pulumi.runtime import rpc

from backends.runpod.client import API_KEY_ENV
from backends.runpod.errors import BidTooLow, NoCapacity, NotFound, RunPodError, SpotUnavailable, TransientError
from backends.runpod.models import EXITED, PROVISIONING, RUNNING, STARTING, CatalogPrice, Pod, PodSpec, SshEndpoint
from infra import pod_lifecycle as life
from infra import provider_support as ps
from infra.pod_resource import PodProvider
from infra.volume_resource import VolumeProvider

SPEC = PodSpec(
    name="p",
    image="img",
    gpu_type="NVIDIA GeForce RTX 4090",
    gpu_count=1,
    data_center="EU-RO-1",
    volume_id="vol1",
    container_disk_gb=50,
)


def _pod(status=PROVISIONING, *, ssh=None, last=None, pod_id="pod1", interruptible=True):
    return Pod(
        id=pod_id,
        name="p",
        status=status,
        desired_status=None,
        interruptible=interruptible,
        gpu_type=SPEC.gpu_type,
        gpu_count=1,
        cost_per_hr=0.5,
        data_center="EU-RO-1",
        volume_id="vol1",
        ssh=ssh,
        last_status_change=last,
        started_at=None,
    )


class ScriptedClient:
    """Answers from a script; records every call by name."""

    def __init__(self, *, spot=None, on_demand=None, price=None, statuses=()):
        self.spot, self.on_demand, self.price = spot, on_demand, price
        self.statuses = list(statuses)
        self.calls: list[str] = []
        self.terminated: set[str] = set()

    def _answer(self, value):
        if isinstance(value, BaseException):
            raise value
        return value

    def create_spot_pod(self, spec, bid):
        self.calls.append("create_spot_pod")
        return self._answer(self.spot)

    def create_on_demand_pod(self, spec):
        self.calls.append("create_on_demand_pod")
        return self._answer(self.on_demand)

    def spot_price(self, gpu_type, gpu_count, dc):
        self.calls.append("spot_price")
        return self._answer(self.price)

    def on_demand_price(self, gpu_type, gpu_count, dc, cloud="SECURE"):  # the REST v2 catalog
        self.calls.append("on_demand_price")
        return self._answer(self.price)

    def get_pod(self, pod_id, *, with_history=False):
        self.calls.append("get_pod")
        if pod_id in self.terminated:
            raise NotFound("gone")
        pod = self.statuses[0] if len(self.statuses) == 1 else self.statuses.pop(0)
        return self._answer(pod)

    def find_pod(self, pod_id, *, with_history=False):
        try:
            return self.get_pod(pod_id, with_history=with_history)
        except NotFound:
            return None

    def terminate_pod(self, pod_id):
        self.calls.append("terminate_pod")
        if pod_id in self.terminated:
            raise NotFound("pod not found to terminate")
        self.terminated.add(pod_id)


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, s):
        assert s > 0
        self.now += s


def _listed(per_gpu, stock="HIGH", count=1):
    return CatalogPrice("NVIDIA GeForce RTX 4090", "SECURE", per_gpu, count, stock)


def _obtain(client, fallback="fail", cap=None):
    return life.obtain_pod(client, SPEC, bid_per_gpu=0.5, spot_fallback=fallback, max_on_demand_price_per_gpu=cap)


# ---------------------------------------------------------------- market policy
def test_spot_is_tried_first():
    client = ScriptedClient(spot=_pod())
    assert _obtain(client, "on-demand", 0.7) == (_pod(), "spot")
    assert client.calls == ["create_spot_pod"]


@pytest.mark.parametrize(
    "error",
    [
        NoCapacity("There are no longer any instances available"),
        SpotUnavailable("Cannot query field podRentInterruptable"),
    ],
)
def test_without_fallback_no_spot_fails_clearly_and_creates_nothing(error):
    client = ScriptedClient(spot=error)
    with pytest.raises(life.PodCreateError) as err:
        _obtain(client, "fail")
    assert "Nothing was created" in str(err.value) and "spotFallback on-demand" in str(err.value)
    assert client.calls == ["create_spot_pod"]


@pytest.mark.parametrize("error", [NoCapacity("no longer any instances"), SpotUnavailable("gone")])
def test_fallback_creates_on_demand_under_the_cap(error):
    client = ScriptedClient(spot=error, on_demand=_pod(interruptible=False), price=_listed(0.69))
    pod, market = _obtain(client, "on-demand", 0.70)
    assert market == "on-demand" and pod.id == "pod1"
    assert client.calls == ["create_spot_pod", "on_demand_price", "create_on_demand_pod"]


@pytest.mark.parametrize(
    "price",
    [
        _listed(0.71),
        RunPodError("RunPod's GPU catalog gave no usable `price.secure` for NVIDIA GeForce RTX 4090 (absent)"),
        TransientError("failed after 5 attempts: HTTP 502"),
    ],
)
def test_fallback_refuses_above_the_cap_or_when_the_price_is_unknown(price):
    client = ScriptedClient(spot=NoCapacity("no longer any instances"), price=price)
    with pytest.raises(life.PodCreateError) as err:
        _obtain(client, "on-demand", 0.70)
    assert "Nothing was created" in str(err.value) and "maxOnDemandPricePerGpu" in str(err.value)
    shown = "$0.71/GPU-h (price.secure" if isinstance(price, CatalogPrice) else price.message
    assert shown in str(err.value)  # the price, or why it is unknown (the field by name)
    assert "create_on_demand_pod" not in client.calls


def test_fallback_compares_the_price_per_gpu_and_shows_the_pod_rate():
    spec = PodSpec(**{**SPEC.__dict__, "gpu_count": 2})
    client = ScriptedClient(spot=NoCapacity("x"), price=_listed(0.69, count=2))
    with pytest.raises(life.PodCreateError) as err:
        life.obtain_pod(client, spec, bid_per_gpu=0.5, spot_fallback="on-demand", max_on_demand_price_per_gpu=0.6)
    assert "$0.69/GPU-h ($1.38/h for 2 GPUs)" in str(err.value)
    client = ScriptedClient(spot=NoCapacity("x"), price=_listed(0.69, count=2), on_demand=_pod(interruptible=False))
    assert life.obtain_pod(client, spec, bid_per_gpu=0.5, spot_fallback="on-demand", max_on_demand_price_per_gpu=0.7)[
        1
    ] == ("on-demand")


def test_no_on_demand_capacity_either():
    client = ScriptedClient(
        spot=NoCapacity("x"),
        price=_listed(0.5),
        on_demand=NoCapacity("There are no longer any instances available"),
    )
    with pytest.raises(life.PodCreateError, match="Neither spot nor on-demand capacity"):
        _obtain(client, "on-demand", 0.70)


def test_bid_too_low_asks_for_a_higher_bid_and_never_falls_back():
    client = ScriptedClient(spot=BidTooLow("bid below minimum bid price"), on_demand=_pod())
    with pytest.raises(life.PodCreateError, match="pulumi config set bidPerGpu"):
        _obtain(client, "on-demand", 0.70)
    assert client.calls == ["create_spot_pod"]


# ---------------------------------------------------------------- waiting for the pod
SSH = SshEndpoint("127.0.0.1", 2222)


def test_wait_needs_running_endpoint_and_banner():
    t = FakeTime()
    client = ScriptedClient(
        statuses=[_pod(), _pod(STARTING), _pod(RUNNING), _pod(RUNNING, ssh=SSH), _pod(RUNNING, ssh=SSH)]
    )
    banners = iter([None, "SSH-2.0-OpenSSH_9.6"])
    probed = []

    def probe(host, port, *, timeout):
        probed.append((host, port))
        return next(banners)

    pod = life.wait_until_reachable(client, "pod1", timeout_s=60, probe=probe, sleep=t.sleep, clock=t.clock)
    assert pod.ssh == SSH and probed == [("127.0.0.1", 2222)] * 2


def test_wait_gives_up_at_its_own_deadline():
    t = FakeTime()
    client = ScriptedClient(statuses=[_pod(RUNNING, ssh=SSH)])
    with pytest.raises(life.PodNotReachable) as err:
        life.wait_until_reachable(
            client, "pod1", timeout_s=30, probe=lambda h, p, timeout: None, sleep=t.sleep, clock=t.clock
        )
    assert "within 30s" in str(err.value) and "no SSH banner" in str(err.value)
    assert t.now >= 30


def test_wait_reports_a_pod_lost_while_starting():
    client = ScriptedClient(statuses=[_pod(EXITED, last="Outbid: Wed Jul 29 2026")])
    with pytest.raises(life.PodNotReachable, match="went EXITED while starting \\(Outbid"):
        life.wait_until_reachable(client, "pod1", timeout_s=30, probe=lambda *a, **k: None)


def test_terminate_is_idempotent_and_waits_until_gone():
    client = ScriptedClient(statuses=[_pod(RUNNING)])
    life.terminate_and_wait(client, "pod1")
    life.terminate_and_wait(client, "pod1")  # already gone: fine
    assert client.calls.count("terminate_pod") == 2


# ---------------------------------------------------------------- provider create cleanup
POD_PROPS = {
    "pod_name": "p",
    "image": "img",
    "gpu_type": "NVIDIA GeForce RTX 4090",
    "gpu_count": 1.0,
    "data_center": "EU-RO-1",
    "cloud_type": "SECURE",
    "volume_id": "vol1",
    "volume_mount_path": "/workspace",
    "container_disk_gb": 50.0,
    "ports": ["22/tcp"],
    "env": {"A": "b"},
    "bid_per_gpu": 0.5,
    "spot_fallback": "fail",
    "create_timeout_s": 60.0,
    "__provider": "blob",
}


@pytest.mark.parametrize("failure", [TransientError("502 Bad Gateway"), KeyboardInterrupt()])
def test_create_terminates_its_pod_when_the_wait_fails(monkeypatch, failure):
    client = ScriptedClient(spot=_pod(), statuses=[failure])
    monkeypatch.setattr(ps, "make_client", lambda: client)
    with pytest.raises(type(failure) if isinstance(failure, KeyboardInterrupt) else life.PodCreateError) as err:
        PodProvider().create(dict(POD_PROPS))
    assert client.terminated == {"pod1"}
    if not isinstance(failure, KeyboardInterrupt):
        assert "502 Bad Gateway" in str(err.value) and "pod1 was terminated" in str(err.value)


# ---------------------------------------------------------------- diff / check rules
def _outs(**changes):
    olds = {k: v for k, v in POD_PROPS.items() if k != "__provider"}
    olds.update(
        pod_id="pod1", market="spot", status="RUNNING", ssh_host="1.2.3.4", ssh_port=2222.0, __provider="OLD-BLOB"
    )
    news = {**POD_PROPS, "gpu_count": 1, "container_disk_gb": 50, "__provider": "NEW-BLOB"}
    news.update(changes)
    return olds, news


def test_pod_diff_ignores_provider_and_float_int_noise():
    olds, news = _outs()
    d = PodProvider().diff("pod1", olds, news)
    assert d.changes is False and d.replaces == []


@pytest.mark.parametrize(
    "key,value",
    [
        ("image", "other"),
        ("gpu_type", "NVIDIA A40"),
        ("gpu_count", 2),
        ("data_center", "US-KS-2"),
        ("volume_id", "vol2"),
        ("volume_id", rpc.UNKNOWN),
        ("env", {"A": "c"}),
        ("ports", ["22/tcp", "80/http"]),
        ("container_disk_gb", 60),
        ("pod_name", "q"),
    ],
)
def test_pod_diff_replaces_what_runpod_cannot_change_in_place(key, value):
    olds, news = _outs(**{key: value})
    d = PodProvider().diff("pod1", olds, news)
    assert d.changes is True and d.replaces == [key] and d.delete_before_replace is True


@pytest.mark.parametrize(
    "key,value",
    [
        ("bid_per_gpu", 0.6),
        ("spot_fallback", "on-demand"),
        ("create_timeout_s", 120),
        ("max_on_demand_price_per_gpu", 0.7),
        ("idle_stop_minutes", 5),
    ],
)
def test_pod_diff_updates_our_own_settings_in_place(key, value):
    olds, news = _outs(**{key: value})
    d = PodProvider().diff("pod1", olds, news)
    assert d.changes is True and d.replaces == []


def test_a_pod_from_before_the_idle_stop_is_kept_not_replaced():
    """Old state has no idle_stop_minutes: the new default is an update; the runner covers that pod."""
    olds, news = _outs(idle_stop_minutes=20)
    assert "idle_stop_minutes" not in olds
    d = PodProvider().diff("pod1", olds, news)
    assert d.changes is True and d.replaces == []


def test_pod_check_rejects_a_negative_idle_stop():
    failures = PodProvider().check({}, {**POD_PROPS, "idle_stop_minutes": -1}).failures
    assert [f.property for f in failures] == ["idle_stop_minutes"]


def test_pod_check_coerces_and_rejects():
    res = PodProvider().check({}, dict(POD_PROPS))
    assert res.failures == [] and res.inputs["gpu_count"] == 1 and isinstance(res.inputs["gpu_count"], int)
    bad = {**POD_PROPS, "gpu_count": 1.5, "cloud_type": "COMMUNITY", "spot_fallback": "on-demand"}
    props = {f.property for f in PodProvider().check({}, bad).failures}
    assert props == {"gpu_count", "cloud_type", "max_on_demand_price_per_gpu"}
    # During preview the volume ID is unknown: that is not a failure.
    assert PodProvider().check({}, {**POD_PROPS, "volume_id": rpc.UNKNOWN}).failures == []


def test_volume_diff_and_check():
    olds = {"volume_id": "v1", "volume_name": "a", "size_gb": 100.0, "data_center": "EU-RO-1", "__provider": "x"}
    vp = VolumeProvider()
    assert vp.diff("v1", olds, {**olds, "size_gb": 100, "__provider": "y"}).changes is False
    grow = vp.diff("v1", olds, {**olds, "size_gb": 200})
    assert grow.changes is True and grow.replaces == []
    assert vp.diff("v1", olds, {**olds, "volume_name": "b"}).replaces == []
    assert vp.diff("v1", olds, {**olds, "data_center": "US-KS-2"}).replaces == ["data_center"]
    shrink = vp.check({"size_gb": 100.0}, {"volume_name": "a", "size_gb": 50.0, "data_center": "eu-ro-1"})
    assert [f.property for f in shrink.failures] == ["size_gb"] and "only grow" in shrink.failures[0].reason
    ok = vp.check({}, {"volume_name": "a", "size_gb": 50.0, "data_center": "eu-ro-1"})
    assert ok.failures == [] and ok.inputs["size_gb"] == 50 and ok.inputs["data_center"] == "EU-RO-1"


def test_missing_key_is_an_actionable_error(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    ps.set_token(None)
    with pytest.raises(ps.MissingApiKey, match="pulumi config set --secret runpod:token"):
        ps.make_client()


def test_provider_repr_and_state_hold_no_secret():
    p = PodProvider()
    assert repr(p) == "PodProvider()" and vars(p) == {}
