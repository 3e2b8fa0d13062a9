"""The fake's GPU utilization (Pod.runtime.gpus[], scripted by a test) and pod billing (GET /v2/billing/pods),
as RunPod's v2.9.0 spec shapes them: the `fake_runpod` fixture holds every answer to the spec (spec.py)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from standins.runpod_api import billing
from tests.standins.test_fake_runpod import Api, api  # noqa: F401  (fixture)


def hour(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:00:00Z")


def test_a_running_pod_reports_the_gpu_use_a_test_scripts(fake_runpod, api):
    pod = fake_runpod.add_pod(status="RUNNING", gpu_count=2)
    _, _, body = api.call("GET", f"/v2/pods/{pod.id}")
    assert "gpus" not in body["runtime"], "unscripted: the API reports no utilization"
    fake_runpod.set_gpu_use(pod.id, [(31, 62), (90, 71)])
    _, _, body = api.call("GET", f"/v2/pods/{pod.id}")
    assert body["runtime"]["gpus"] == [{"util": 31, "memoryUtil": 62}, {"util": 90, "memoryUtil": 71}]
    assert [(g.util, g.memory_util) for g in fake_runpod.client().get_pod(pod.id).gpu_use] == [(31, 62), (90, 71)]
    fake_runpod.hide_runtime(pod.id)
    _, _, body = api.call("GET", f"/v2/pods/{pod.id}")
    assert body["runtime"] is None and body["ssh"]["direct"] is not None
    assert fake_runpod.client().get_pod(pod.id).gpu_use is None, "no runtime: not reported, never 0%"
    fake_runpod.hide_runtime(pod.id, False)
    fake_runpod.client().stop_pod(pod.id)
    _, _, body = api.call("GET", f"/v2/pods/{pod.id}")
    assert body["runtime"] is None, "a stopped pod has no live utilization"


def test_the_controls_over_http_script_the_gpus(fake_runpod):
    ctl = Api(fake_runpod, None)
    pod = fake_runpod.add_pod(status="RUNNING")
    assert ctl.call("POST", "/_fake/gpu_use", {"pod_id": pod.id, "gpus": [[45, 50]]})[0] == 200
    assert fake_runpod.client().get_pod(pod.id).gpu_use[0].util == 45
    assert ctl.call("POST", "/_fake/hide_runtime", {"pod_id": pod.id})[0] == 200
    assert fake_runpod.client().get_pod(pod.id).gpu_use is None


def test_billing_buckets_what_each_pod_ran_at_its_rate(fake_runpod, api):
    a = fake_runpod.add_pod(status="RUNNING", bid_per_gpu=0.36)
    b = fake_runpod.add_pod(status="RUNNING", bid_per_gpu=0.5)
    fake_runpod.backdate_billing(a.id, 2 * 3600)  # a ran two hours; b only now
    fake_runpod.client().stop_pod(a.id)
    now = datetime.now(timezone.utc)
    start = datetime.fromtimestamp(time.time() - 3 * 3600, timezone.utc)
    status, _, body = api.call("GET", f"/v2/billing/pods?podId={a.id}&bucketSize=hour&startTime={hour(start)}")
    assert status == 200
    records = body["records"]
    assert {r["podId"] for r in records} == {a.id} and 2 <= len(records) <= 3
    assert all(r["endTime"] > r["startTime"] and r["cpuAmount"] == 0 for r in records)
    total = body["metadata"]["totals"]["totalAmount"]
    assert total == pytest.approx(0.72, abs=0.002) == pytest.approx(sum(r["totalAmount"] for r in records), abs=1e-5)
    query = body["metadata"]["query"]
    assert (query["startTime"], query["bucketSize"], query["podId"]) == (hour(start), "hour", a.id)
    assert query["endTime"] > now.strftime("%Y-%m-%dT%H:%M:%SZ"), "snapped up to the end of the current hour"
    assert body["metadata"]["recordCount"] == len(records) and body["metadata"]["uniquePodCount"] == 1
    assert fake_runpod.client().pod_billing(a.id, start=hour(start)).total_usd == pytest.approx(total)

    _, _, both = api.call("GET", "/v2/billing/pods?lastN=1&bucketSize=day")  # every pod, today
    assert {r["podId"] for r in both["records"]} <= {a.id, b.id} and both["metadata"]["query"]["podId"] is None
    _, _, nobody = api.call("GET", "/v2/billing/pods?podId=unknown")
    assert nobody["records"] == [] and nobody["metadata"]["totals"]["totalAmount"] == 0


def test_billing_refuses_lastn_with_a_window_and_a_bad_time(fake_runpod, api):
    # Queries the spec's parameter schemas let through, refused by the rules its descriptions state.
    assert api.call("GET", "/v2/billing/pods?lastN=2&startTime=2026-06-01T00:00:00Z")[0] == 400
    assert api.call("GET", "/v2/billing/pods?startTime=yesterday")[0] == 400


def test_buckets_snap_to_their_boundaries():
    dt = datetime(2026, 12, 9, 17, 42, 5, tzinfo=timezone.utc)  # a Wednesday
    assert billing.floor(dt, "hour") == datetime(2026, 12, 9, 17, tzinfo=timezone.utc)
    assert billing.floor(dt, "week") == datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert billing.following(billing.floor(dt, "month"), "month") == datetime(2027, 1, 1, tzinfo=timezone.utc)
    start, end, size = billing.window({"bucketSize": "day", "startTime": "2026-12-01T05:00:00Z"}, dt)
    assert (start, end, size) == (
        datetime(2026, 12, 1, tzinfo=timezone.utc),
        datetime(2026, 12, 9, 17, 42, 5, tzinfo=timezone.utc).replace(hour=0, minute=0, second=0)
        + (datetime(2026, 12, 10, tzinfo=timezone.utc) - datetime(2026, 12, 9, tzinfo=timezone.utc)),
        "day",
    )
