"""The fake RunPod API's own rules, checked over raw HTTP (independent of the client)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from standins.runpod_api import FakeRunPod

GPU = "NVIDIA GeForce RTX 4090"
ROOT = Path(__file__).resolve().parents[2]


class Api:
    """Minimal raw HTTP helper: returns (status, headers, parsed body)."""

    def __init__(self, fake: FakeRunPod, key: str | None = "account"):
        self.fake = fake
        self.key = fake.api_key if key == "account" else key

    def call(self, method: str, path: str, body=None, *, headers: dict | None = None):
        u = urlsplit(self.fake.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        hdrs = {"Content-Type": "application/json"}
        if self.key:
            hdrs["Authorization"] = f"Bearer {self.key}"
        hdrs.update(headers or {})
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, (json.loads(raw) if raw else None)

    def gql(self, query: str, variables: dict | None = None):
        status, headers, body = self.call("POST", "/graphql", {"query": query, "variables": variables or {}})
        return status, body


@pytest.fixture
def api(fake_runpod) -> Api:
    return Api(fake_runpod)


def pod_body(**over) -> dict:
    body = {
        "name": "trainer",
        "image": "img:1",
        "cloud": "SECURE",
        "gpu": {"id": GPU, "count": 1},
        "dataCenterIds": ["EU-RO-1"],
        "disk": 30,
        "ports": ["22/tcp"],
        "env": {"PUBLIC_KEY": "k"},
        "startSsh": True,
    }
    body.update(over)
    return body


RENT = """mutation R($input: PodRentInterruptableInput!) {
  podRentInterruptable(input: $input) { id name desiredStatus costPerHr lastStatusChange podType machine { podHostId } }
}"""
POD_Q = """query P($podId: String!) { pod(input: {podId: $podId}) {
  id desiredStatus lastStatusChange podType runtime { uptimeInSeconds ports { ip isIpPublic privatePort publicPort type } } } }"""
BID_RESUME = """mutation B($podId: String!, $bid: Float!, $n: Int!) {
  podBidResume(input: {podId: $podId, bidPerGpu: $bid, gpuCount: $n}) { id desiredStatus lastStatusChange } }"""


def rent_input(**over) -> dict:
    inp = {
        "bidPerGpu": 0.3,
        "cloudType": "SECURE",
        "dataCenterId": "EU-RO-1",
        "gpuTypeId": GPU,
        "gpuCount": 1,
        "name": "spot",
        "imageName": "img:1",
        "containerDiskInGb": 30,
        "volumeInGb": 0,
        "ports": "22/tcp",
        "startSsh": True,
        "supportPublicIp": True,
        "env": [{"key": "PUBLIC_KEY", "value": "k"}],
    }
    inp.update(over)
    return inp


# ---------------------------------------------------------------- auth, envelopes, headers
def test_401_for_missing_or_wrong_key_with_problem_envelope(fake_runpod):
    for key, detail in ((None, "missing bearer token"), ("nope", "invalid bearer token")):
        status, headers, body = Api(fake_runpod, key).call("GET", "/v2/pods")
        assert status == 401 and body == {"title": "Unauthorized", "status": 401, "detail": detail}
        assert headers["content-type"] == "application/problem+json" and headers["x-request-id"]
    status, _, _ = Api(fake_runpod, None).call("POST", "/graphql", {"query": "{ myself { id } }"})
    assert status == 401


def test_key_in_the_url_is_a_recorded_violation(fake_runpod, api):
    status, _, _ = api.call("GET", f"/v2/pods?api_key={fake_runpod.api_key}")
    assert status == 401
    assert fake_runpod.violations == ["API key in the URL of GET /v2/pods"]
    fake_runpod.violations.clear()  # the fixture fails any test that leaves a violation behind


def test_every_response_has_a_request_id_and_authenticated_ones_rate_limit_headers(api):
    seen = set()
    for method, path in (("GET", "/v2/pods"), ("GET", "/v2/pods/nope"), ("GET", "/v2/nothing"), ("PUT", "/v2/pods")):
        status, headers, _ = api.call(method, path)
        seen.add(headers["x-request-id"])
    assert len(seen) == 4
    _, headers, _ = api.call("GET", "/v2/pods")
    assert "ratelimit" in headers and "ratelimit-policy" in headers


def test_404_405_and_invalid_json(api):
    assert api.call("GET", "/v2/pods/doesnotexist")[0] == 404
    assert api.call("GET", "/v2/network-volumes/doesnotexist")[2]["detail"] == "network volume not found"
    assert api.call("PUT", "/v2/pods")[0] == 405
    status, _, body = api.call("POST", "/v2/pods", b"{not json")
    assert status == 400 and body["title"] == "Bad Request"


def test_422_names_unknown_and_mistyped_fields(fake_runpod, api):
    with fake_runpod.off_spec() as broken:  # every request here breaks RunPod's spec on purpose
        status, _, body = api.call("POST", "/v2/pods", pod_body(bogus=1))
        assert status == 422 and body["errors"] == ["$: additional properties 'bogus' not allowed"]
        status, _, body = api.call("POST", "/v2/network-volumes", {"name": "v", "size": 10, "dataCenterId": "EU-RO-1"})
        assert status == 422 and "'dataCenterId' not allowed" in body["errors"][0]
        status, _, body = api.call("POST", "/v2/pods", pod_body(gpu={"id": GPU, "count": "1"}))
        assert status == 422 and "$.gpu.count" in body["errors"][0]
        status, _, body = api.call("POST", "/v2/pods", pod_body(mounts={"network": [{"volumeId": "x"}]}))
        assert status == 422 and "missing property 'path'" in body["errors"][0]
        status, _, body = api.call("POST", "/v2/pods/x/action", {"action": "stop", "force": True})
        assert status == 422
    assert len({v.split(" request ")[0] for v in broken}) == 3  # createPod, createNetworkVolume, podAction


# ---------------------------------------------------------------- pod state machine
def test_pod_boots_lazily_through_provisioning_to_running(fake_runpod, api):
    fake_runpod.boot_seconds = 30
    status, _, pod = api.call("POST", "/v2/pods", pod_body())
    assert status == 201 and pod["status"] == "PROVISIONING" and pod["actions"] == ["stop", "terminate"]
    assert pod["ssh"]["direct"] is None and pod["runtime"] is None and pod["cost"] == pytest.approx(0.69)
    assert api.call("POST", f"/v2/pods/{pod['id']}/action", {"action": "start"})[0] == 409
    fake_runpod.boot_seconds = 0
    api.call("POST", f"/v2/pods/{pod['id']}/action", {"action": "stop"})
    api.call("POST", f"/v2/pods/{pod['id']}/action", {"action": "start"})
    _, _, running = api.call("GET", f"/v2/pods/{pod['id']}")
    assert running["status"] == "RUNNING" and running["actions"] == ["stop", "restart", "terminate"]
    direct = running["ssh"]["direct"]
    assert direct["username"] == "root" and direct["command"] == f"ssh root@{direct['host']} -p {direct['port']}"
    assert running["runtime"]["ports"] == [
        {"private": 22, "public": direct["port"], "type": "tcp", "ip": direct["host"]}
    ]


def test_boot_passes_through_starting(fake_runpod, api):
    fake_runpod.boot_seconds = 0.4
    _, _, pod = api.call("POST", "/v2/pods", pod_body())
    seen = []

    def reached_running():
        s = api.call("GET", f"/v2/pods/{pod['id']}")[2]["status"]
        if not seen or seen[-1] != s:
            seen.append(s)
        return s == "RUNNING"

    fake_runpod.wait_for(reached_running, timeout=5, interval=0.01)
    assert seen[0] == "PROVISIONING" and seen[-1] == "RUNNING"
    assert set(seen) <= {"PROVISIONING", "STARTING", "RUNNING"}


def test_409_envelope_lists_the_allowed_actions(fake_runpod, api):
    pod = fake_runpod.add_pod(status="EXITED")
    status, _, body = api.call("POST", f"/v2/pods/{pod.id}/action", {"action": "stop"})
    assert status == 409 and body["title"] == "Conflict" and body["detail"] == "Action not valid for current pod status"
    assert body["errors"] == ["pod status is EXITED; allowed actions: start, terminate"]


def test_stopped_pod_costs_nothing_and_v2_hides_runtime_while_graphql_keeps_it_stale(fake_runpod, api):
    pod = fake_runpod.add_pod(status="RUNNING", interruptible=True, bid_per_gpu=0.3)
    status, _, body = api.call("POST", f"/v2/pods/{pod.id}/action", {"action": "stop"})
    assert status == 200 and body["status"] == "EXITED" and body["cost"] == 0.0
    assert body["runtime"] is None and body["ssh"]["direct"] is None
    _, g = api.gql(POD_Q, {"podId": pod.id})
    assert g["data"]["pod"]["desiredStatus"] == "EXITED"
    assert g["data"]["pod"]["runtime"]["ports"][0]["privatePort"] == 22  # stale, as on RunPod
    assert g["data"]["pod"]["lastStatusChange"].startswith("Exited by user: ")


def test_terminated_pod_is_404_in_v2_null_in_graphql_and_unlisted(fake_runpod, api):
    pod = fake_runpod.add_pod()
    assert api.call("DELETE", f"/v2/pods/{pod.id}")[0] == 204
    assert api.call("GET", f"/v2/pods/{pod.id}")[0] == 404
    assert api.call("DELETE", f"/v2/pods/{pod.id}")[0] == 404
    assert api.call("GET", "/v2/pods")[2] == {"pods": [], "pagination": {"hasNextPage": False, "nextCursor": None}}
    assert api.gql(POD_Q, {"podId": pod.id})[1] == {"data": {"pod": None}}
    assert fake_runpod.pods[pod.id].status == "TERMINATED"
    assert fake_runpod.pods[pod.id].last_status_change.startswith("Terminated by user: ")
    other = fake_runpod.add_pod()
    assert api.call("POST", f"/v2/pods/{other.id}/action", {"action": "terminate"})[0] == 204
    _, g = api.gql("mutation T($id: String!) { podTerminate(input: {podId: $id}) }", {"id": other.id})
    assert g["errors"][0]["message"] == "pod not found to terminate" and g["data"] == {"podTerminate": None}


def test_last_status_change_texts_and_started_at_through_a_spot_life(fake_runpod, api):
    fake_runpod.boot_seconds = 0
    _, g = api.gql(RENT, {"input": rent_input()})
    pod = g["data"]["podRentInterruptable"]
    assert pod["podType"] == "INTERRUPTABLE" and pod["lastStatusChange"].startswith("Rented by User: ")
    assert pod["costPerHr"] == pytest.approx(0.3) and pod["machine"]["podHostId"].startswith(pod["id"] + "-")
    first = api.call("GET", f"/v2/pods/{pod['id']}")[2]["startedAt"]
    fake_runpod.preempt(pod["id"])
    _, g = api.gql(POD_Q, {"podId": pod["id"]})
    assert g["data"]["pod"]["lastStatusChange"].startswith("Outbid: ")
    assert api.call("GET", f"/v2/pods/{pod['id']}")[2]["status"] == "EXITED"
    _, g = api.gql(BID_RESUME, {"podId": pod["id"], "bid": 0.3, "n": 1})
    assert g["data"]["podBidResume"]["desiredStatus"] == "RUNNING"
    assert api.call("GET", f"/v2/pods/{pod['id']}")[2]["startedAt"] > first
    fake_runpod.preempt(pod["id"], terminate=True)
    assert api.call("GET", f"/v2/pods/{pod['id']}")[0] == 404
    assert fake_runpod.pods[pod["id"]].last_status_change.startswith("Outbid: ")
    with pytest.raises(ValueError):
        fake_runpod.preempt(fake_runpod.add_pod(interruptible=False).id)


# ---------------------------------------------------------------- spot vs on-demand
def test_spot_and_on_demand_resume_rules(fake_runpod, api):
    spot = fake_runpod.add_pod(status="EXITED", interruptible=True)
    od = fake_runpod.add_pod(status="EXITED", interruptible=False)
    resume = "mutation R($id: String!) { podResume(input: {podId: $id, gpuCount: 1}) { id desiredStatus } }"
    assert (
        api.gql(resume, {"id": spot.id})[1]["errors"][0]["message"] == "Cannot resume a spot pod as an on demand pod."
    )
    status, _, body = api.call("POST", f"/v2/pods/{spot.id}/action", {"action": "start"})
    assert status == 409 and body["detail"] == "Cannot resume a spot pod as an on demand pod."
    assert (
        "on demand pod as a spot pod"
        in api.gql(BID_RESUME, {"podId": od.id, "bid": 0.3, "n": 1})[1]["errors"][0]["message"]
    )
    assert api.gql(resume, {"id": od.id})[1]["data"]["podResume"]["desiredStatus"] == "RUNNING"
    assert "minimum bid" in api.gql(BID_RESUME, {"podId": spot.id, "bid": 0.01, "n": 1})[1]["errors"][0]["message"]
    assert fake_runpod.pods[spot.id].status == "EXITED"


def test_bid_resume_without_gpu_count_is_http_400(fake_runpod, api):
    spot = fake_runpod.add_pod(status="EXITED")
    q = "mutation B($id: String!) { podBidResume(input: {podId: $id, bidPerGpu: 0.3}) { id } }"
    status, body = api.gql(q, {"id": spot.id})
    assert status == 400 and "gpuCount" in body["errors"][0]["message"]


def test_pod_resume_input_rejects_cuda_fields(fake_runpod, api):
    pod = fake_runpod.add_pod(status="EXITED", interruptible=False)
    q = 'mutation { podResume(input: {podId: "%s", gpuCount: 1, allowedCudaVersions: ["12.8"]}) { id } }' % pod.id
    status, body = api.gql(q)
    assert status == 200
    assert body["errors"][0]["message"] == 'Field "allowedCudaVersions" is not defined by type "PodResumeInput".'


def test_minimum_bid_and_prices(fake_runpod, api):
    fake_runpod.set_price(GPU, minimum_bid=0.25, stock="Low")
    q = """query S($id: String!) { gpuTypes(input: {id: $id}) { id securePrice
           lowestPrice(input: {gpuCount: 1, secureCloud: true, dataCenterId: "EU-RO-1"}) { minimumBidPrice stockStatus } } }"""
    _, body = api.gql(q, {"id": GPU})
    assert body == {
        "data": {
            "gpuTypes": [
                {"id": GPU, "securePrice": 0.69, "lowestPrice": {"minimumBidPrice": 0.25, "stockStatus": "Low"}}
            ]
        }
    }
    assert "minimum bid" in api.gql(RENT, {"input": rent_input(bidPerGpu=0.2)})[1]["errors"][0]["message"]


# ---------------------------------------------------------------- GraphQL schema behaviour
def test_unknown_fields_are_graphql_errors_in_http_200(fake_runpod, api):
    status, body = api.gql("mutation { podRentSpot(input: {}) { id } }")
    assert status == 200 and body["errors"][0]["message"] == 'Cannot query field "podRentSpot" on type "Mutation".'
    assert "data" not in body
    _, body = api.gql('query { pod(input: {podId: "x"}) { id publicIp } }')
    assert body["errors"][0]["message"] == 'Cannot query field "publicIp" on type "Pod".'
    _, body = api.gql('query { pod(input: {podId: "x"}) { id machine } }')
    assert "must have a selection of subfields" in body["errors"][0]["message"]
    _, body = api.gql("query Q($id: String!) { pod(input: {podId: $id}) { id } }")
    assert body["errors"][0]["message"] == 'Variable "$id" of required type "String!" was not provided.'
    status, body = api.gql("mutation { podStop(")
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


def test_aliases_and_multiple_root_fields(fake_runpod, api):
    a, b = fake_runpod.add_pod(name="a"), fake_runpod.add_pod(name="b")
    q = 'query { first: pod(input: {podId: "%s"}) { name } second: pod(input: {podId: "%s"}) { n: name } }' % (
        a.id,
        b.id,
    )
    assert api.gql(q)[1] == {"data": {"first": {"name": "a"}, "second": {"n": "b"}}}
    assert fake_runpod.requests[-1].operation == "pod,pod"


def test_remove_spot_makes_the_spot_schema_disappear(fake_runpod, api):
    fake_runpod.remove_spot()
    assert (
        api.gql(RENT, {"input": rent_input()})[1]["errors"][0]["message"]
        == 'Cannot query field "podRentInterruptable" on type "Mutation".'
    )
    pod = fake_runpod.add_pod(status="EXITED")
    assert "podBidResume" in api.gql(BID_RESUME, {"podId": pod.id, "bid": 0.3, "n": 1})[1]["errors"][0]["message"]
    q = 'query { gpuTypes(input: {id: "%s"}) { lowestPrice(input: {gpuCount: 1}) { minimumBidPrice } } }' % GPU
    assert api.gql(q)[1]["errors"][0]["message"] == 'Cannot query field "minimumBidPrice" on type "LowestPrice".'
    fake_runpod.restore_spot()
    assert "data" in api.gql(RENT, {"input": rent_input()})[1]


# ---------------------------------------------------------------- network volumes
def test_volume_crud_and_rules(fake_runpod, api):
    status, _, vol = api.call("POST", "/v2/network-volumes", {"name": "ckpt", "size": 100, "dataCenter": "EU-RO-1"})
    assert status == 201 and vol == {
        "id": vol["id"],
        "name": "ckpt",
        "size": 100,
        "dataCenter": "EU-RO-1",
        "type": "STANDARD",
    }
    assert api.call("GET", "/v2/network-volumes")[2]["networkVolumes"] == [vol]
    with fake_runpod.off_spec():
        for size in (9, 4097):
            assert (
                api.call("POST", "/v2/network-volumes", {"name": "v", "size": size, "dataCenter": "EU-RO-1"})[0] == 422
            )
    for dc in ("CZ", "eu-ro-1", "US", "EU-XX-9", "US-TX-3"):  # malformed, unknown, or no volumes there
        status, _, body = api.call("POST", "/v2/network-volumes", {"name": "v", "size": 10, "dataCenter": dc})
        assert status == 400 and "does not support STANDARD network volumes" in body["detail"]
        assert "supported data centers: EU-RO-1" in body["detail"] and "US-TX-3" not in body["detail"].split(":")[-1]
    with fake_runpod.off_spec():
        assert api.call("PATCH", f"/v2/network-volumes/{vol['id']}", {})[0] == 422
        assert api.call("PATCH", f"/v2/network-volumes/{vol['id']}", {"dataCenter": "EU-CZ-1"})[0] == 422
    status, _, body = api.call("PATCH", f"/v2/network-volumes/{vol['id']}", {"size": 50})
    assert status == 400 and "only increase" in body["detail"]
    assert api.call("PATCH", f"/v2/network-volumes/{vol['id']}", {"size": 200})[2]["size"] == 200
    _, g = api.gql("query { myself { networkVolumes { id size dataCenterId } } }")
    assert g["data"]["myself"]["networkVolumes"] == [{"id": vol["id"], "size": 200, "dataCenterId": "EU-RO-1"}]
    assert api.call("DELETE", f"/v2/network-volumes/{vol['id']}")[0] == 204
    assert api.call("DELETE", f"/v2/network-volumes/{vol['id']}")[0] == 404


def test_volume_only_in_secure_cloud_and_its_data_center(fake_runpod, api):
    vol = fake_runpod.add_volume(data_center="EU-RO-1")
    mounts = {"network": [{"volumeId": vol.id, "path": "/workspace"}]}
    status, _, body = api.call("POST", "/v2/pods", pod_body(cloud="COMMUNITY", mounts=mounts))
    assert status == 400 and "Secure Cloud" in body["detail"]
    status, _, body = api.call("POST", "/v2/pods", pod_body(dataCenterIds=["US-KS-2"], mounts=mounts))
    assert status == 400 and "same data center" in body["detail"]
    msg = "Something went wrong. Please try again later or contact support."
    assert (
        api.gql(RENT, {"input": rent_input(cloudType="COMMUNITY", networkVolumeId=vol.id)})[1]["errors"][0]["message"]
        == msg
    )
    assert (
        api.gql(RENT, {"input": rent_input(dataCenterId="US-KS-2", networkVolumeId=vol.id)})[1]["errors"][0]["message"]
        == msg
    )
    assert (
        api.gql(RENT, {"input": rent_input(dataCenterId="CZ")})[1]["errors"][0]["message"]
        == "Failed to find data center, please try again."
    )
    status, _, pod = api.call("POST", "/v2/pods", pod_body(dataCenterIds=[], mounts=mounts))
    assert status == 201 and pod["dataCenterId"] == "EU-RO-1" and pod["mounts"] == mounts
    assert fake_runpod.live_pods()[0].volume_id == vol.id


def test_volume_cannot_be_deleted_while_a_stopped_pod_uses_it(fake_runpod, api):
    vol = fake_runpod.add_volume()
    pod = fake_runpod.add_pod(volume_id=vol.id, status="EXITED")
    status, _, body = api.call("DELETE", f"/v2/network-volumes/{vol.id}")
    assert status == 400 and body["detail"] == "You must remove this network volume from all pods before deleting it."
    api.call("DELETE", f"/v2/pods/{pod.id}")
    assert api.call("DELETE", f"/v2/network-volumes/{vol.id}")[0] == 204


# ---------------------------------------------------------------- SSH ports
def test_public_ssh_port_changes_on_every_start_cycling_the_target_ports(fake_runpod, api):
    fake_runpod.boot_seconds = 0
    fake_runpod.set_ssh_target("127.0.0.1", [2201, 2202, 2203])
    _, _, pod = api.call("POST", "/v2/pods", pod_body())
    ports, started = [], []
    for _ in range(4):
        _, _, p = api.call("GET", f"/v2/pods/{pod['id']}")
        ports.append(p["ssh"]["direct"]["port"])
        started.append(p["startedAt"])
        api.call("POST", f"/v2/pods/{pod['id']}/action", {"action": "stop"})
        api.call("POST", f"/v2/pods/{pod['id']}/action", {"action": "start"})
    assert ports == [2201, 2202, 2203, 2201]
    assert len(set(started)) == 4 and started == sorted(started)
    assert fake_runpod.pods[pod["id"]].start_count == 5


def test_random_ports_without_a_target_still_change(fake_runpod, api):
    fake_runpod.boot_seconds = 0
    pod = fake_runpod.add_pod(interruptible=False)
    before = api.call("GET", f"/v2/pods/{pod.id}")[2]["ssh"]["direct"]["port"]
    api.call("POST", f"/v2/pods/{pod.id}/action", {"action": "stop"})
    api.call("POST", f"/v2/pods/{pod.id}/action", {"action": "start"})
    assert api.call("GET", f"/v2/pods/{pod.id}")[2]["ssh"]["direct"]["port"] != before


def test_no_direct_ssh_without_22_tcp(fake_runpod, api):
    fake_runpod.boot_seconds = 0
    _, _, pod = api.call("POST", "/v2/pods", pod_body(ports=["8888/http"]))
    assert (
        pod["status"] == "RUNNING" and pod["ssh"]["direct"] is None and pod["ssh"]["proxy"]["host"] == "ssh.runpod.io"
    )


# ---------------------------------------------------------------- pod-scoped key
def test_pod_scoped_key_may_only_read_and_stop_its_own_pod(fake_runpod):
    mine, other = fake_runpod.add_pod(), fake_runpod.add_pod()
    pod_api = Api(fake_runpod, fake_runpod.pod_api_key(mine.id))
    assert pod_api.call("GET", f"/v2/pods/{mine.id}")[0] == 200
    assert pod_api.call("GET", f"/v2/pods/{other.id}")[0] == 403
    assert pod_api.call("GET", "/v2/pods")[0] == 403
    assert pod_api.call("POST", f"/v2/pods/{other.id}/action", {"action": "stop"})[0] == 403
    assert pod_api.call("DELETE", f"/v2/pods/{mine.id}")[0] == 403
    assert pod_api.call("POST", f"/v2/pods/{mine.id}/action", {"action": "stop"})[2]["status"] == "EXITED"
    fake_runpod.boot_seconds = 0
    fake_runpod.add_pod(id="x" * 14)
    status, body = Api(fake_runpod, fake_runpod.pod_api_key("x" * 14)).gql(
        "mutation S($id: String!) { podStop(input: {podId: $id}) { id desiredStatus } }", {"id": "x" * 14}
    )
    assert status == 200 and body["data"]["podStop"]["desiredStatus"] == "EXITED"
    env = fake_runpod.rp_environment(mine.id)
    assert env["RUNPOD_POD_ID"] == mine.id and env["RUNPOD_API_KEY"] == fake_runpod.pod_api_key(mine.id)


# ---------------------------------------------------------------- injection, request log
def test_injections_count_down_and_match_rest_patterns(fake_runpod, api):
    fake_runpod.inject("rest:GET /v2/pods/*", "transient", count=2)
    pod = fake_runpod.add_pod()
    assert [api.call("GET", f"/v2/pods/{pod.id}")[0] for _ in range(3)] == [502, 502, 200]
    assert api.call("GET", "/v2/pods")[0] == 200  # the pattern does not match the list
    fake_runpod.inject("rest:GET /v2/pods", "rate_limit", retry_after=7)
    status, headers, body = api.call("GET", "/v2/pods")
    assert status == 429 and headers["retry-after"] == "7" and body["status"] == 429
    fake_runpod.inject("podRentInterruptable", "no_capacity")
    _, g = api.gql(RENT, {"input": rent_input()})
    assert "no longer any instances" in g["errors"][0]["message"] and g["data"] == {"podRentInterruptable": None}
    assert fake_runpod.live_pods() == [pod]
    with pytest.raises(ValueError):
        fake_runpod.inject("podStop", "explode")


def test_request_log_and_billable_calls(fake_runpod, api):
    pod = fake_runpod.add_pod(status="EXITED", interruptible=False)
    api.call("GET", "/v2/pods")
    api.call("POST", f"/v2/pods/{pod.id}/action", {"action": "start"})
    api.call("POST", f"/v2/pods/{pod.id}/action", {"action": "stop"})
    api.gql(RENT, {"input": rent_input()})
    api.call("POST", "/v2/network-volumes", {"name": "v", "size": 10, "dataCenter": "EU-RO-1"})
    log = [(r.method, r.path, r.operation, r.action, r.status) for r in fake_runpod.requests]
    assert log == [
        ("GET", "/v2/pods", None, None, 200),
        ("POST", f"/v2/pods/{pod.id}/action", None, "start", 200),
        ("POST", f"/v2/pods/{pod.id}/action", None, "stop", 200),
        ("POST", "/graphql", "podRentInterruptable", None, 200),
        ("POST", "/v2/network-volumes", None, None, 201),
    ]
    assert [(r.path, r.operation, r.action) for r in fake_runpod.billable_calls()] == [
        (f"/v2/pods/{pod.id}/action", None, "start"),
        ("/graphql", "podRentInterruptable", None),
        ("/v2/network-volumes", None, None),
    ]
    assert all(r.time > 0 and r.request_id for r in fake_runpod.requests)


def test_concurrent_creates_are_consistent(fake_runpod, api):
    fake_runpod.set_ssh_target("127.0.0.1", list(range(3000, 3020)))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(api.call("POST", "/v2/pods", pod_body())[0])) for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 20
    assert sorted(p.ssh_port for p in fake_runpod.live_pods()) == list(range(3000, 3020))


# ---------------------------------------------------------------- GraphQL variable rules (spec 5.8)
def test_a_nullable_variable_in_a_non_null_position_is_rejected(api):
    status, body = api.gql("query Pod($podId: String) { pod(input: {podId: $podId}) { id } }", {"podId": "x"})
    assert status == 200 and body["errors"][0]["message"] == (
        'Variable "$podId" of type "String" used in position expecting type "String!".'
    )
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # with a default the position is satisfied; a non-null variable fits a nullable position
    status, body = api.gql('query Pod($podId: String = "x") { pod(input: {podId: $podId}) { id } }')
    assert "errors" not in body and body["data"] == {"pod": None}
    status, body = api.gql(
        "query P($id: String!, $n: Int!, $dc: String!) { gpuTypes(input: {id: $id}) "
        "{ lowestPrice(input: {gpuCount: $n, dataCenterId: $dc}) { stockStatus } } }",
        {"id": "NVIDIA GeForce RTX 4090", "n": 1, "dc": "EU-RO-1"},
    )
    assert "errors" not in body


def test_unused_and_undefined_variables_and_wrong_types_are_rejected(api):
    _, body = api.gql("query Pod($podId: String!, $extra: Int) { pod(input: {podId: $podId}) { id } }", {"podId": "x"})
    assert [e["message"] for e in body["errors"]] == ['Variable "$extra" is never used in operation "Pod".']
    _, body = api.gql("query Pod { pod(input: {podId: $podId}) { id } }", {"podId": "x"})
    assert body["errors"][0]["message"] == 'Variable "$podId" is not defined by operation "Pod".'
    _, body = api.gql(
        "mutation R($podId: String!, $bid: Int!, $n: Int!) { podBidResume(input: "
        "{podId: $podId, bidPerGpu: $bid, gpuCount: $n}) { id } }",
        {"podId": "x", "bid": 1, "n": 1},
    )
    assert body["errors"][0]["message"] == 'Variable "$bid" of type "Int!" used in position expecting type "Float!".'


# ---------------------------------------------------------------- GraphQL retired, v2 pagination and catalog
def test_graphql_retired_mode_answers_410_gone_and_leaves_rest_alone(fake_runpod, api):
    pod = fake_runpod.add_pod(status="RUNNING")
    fake_runpod.retire_graphql()
    status, headers, body = api.call("POST", "/graphql", {"query": "query { myself { id } }"})
    assert status == 410 and body["status"] == 410 and body["title"] == "Gone" and "x-request-id" in headers
    assert api.call("GET", f"/v2/pods/{pod.id}")[0] == 200
    assert Api(fake_runpod, None).call("POST", "/_fake/restore_graphql")[0] == 200
    assert api.gql("query { myself { id } }")[1]["data"]["myself"]["id"] == "user_fake"
    assert Api(fake_runpod, None).call("POST", "/_fake/retire_graphql")[0] == 200
    assert api.call("POST", "/graphql", {"query": "{ myself { id } }"})[0] == 410


def test_v2_lists_are_cursor_paginated(fake_runpod, api):
    fake_runpod.page_size = 2
    ids = [fake_runpod.add_pod(name=f"p{i}").id for i in range(5)]
    seen, path, cursors = [], "/v2/pods", []
    while True:
        status, _, body = api.call("GET", path)
        assert status == 200 and len(body["pods"]) <= 2
        seen += [p["id"] for p in body["pods"]]
        if not body["pagination"]["hasNextPage"]:
            assert body["pagination"]["nextCursor"] is None
            break
        cursors.append(body["pagination"]["nextCursor"])
        path = "/v2/pods?cursor=" + cursors[-1]
    assert seen == ids and len(set(cursors)) == len(cursors) == 2
    assert api.call("GET", "/v2/pods?cursor=bogus")[0] == 400
    with fake_runpod.off_spec():
        assert api.call("GET", "/v2/pods?limit=5")[0] == 400


def test_v2_catalog_gpu_availability_per_data_center_and_data_centers(fake_runpod, api):
    gpu = "NVIDIA GeForce RTX 4090"
    status, _, body = api.call("GET", "/v2/catalog/gpus")
    entry = next(g for g in body["gpus"] if g["id"] == gpu)
    # The v2.9.0 GpuType: list prices per single GPU for both clouds; no availability unless asked for.
    assert status == 200 and entry["price"] == {"secure": 0.69, "community": 0.49, "serverless": 1.1}
    assert entry["name"] == "RTX 4090" and entry["pool"] == "ADA_24" and entry["maxCount"]["secure"] == 8
    assert "availability" not in entry and "dataCenters" not in entry
    status, _, body = api.call("GET", f"/v2/catalog/gpus/{quote(gpu)}?include=AVAILABILITY&product=POD&count=1")
    dcs = {d["id"]: d["availability"] for d in body["dataCenters"]}
    assert status == 200 and body["availability"] == "HIGH" and dcs["EU-RO-1"] == "HIGH"
    assert body["dataCenters"][0]["name"] == "Europe Romania 1"
    assert "US-KS-2" not in dcs and "US-IL-1" not in dcs  # omitted where unavailable
    fake_runpod.set_stock(gpu, ["EUR-IS-1"])
    body = api.call("GET", f"/v2/catalog/gpus/{quote(gpu)}?include=AVAILABILITY&product=POD&count=1")[2]
    assert [d["id"] for d in body["dataCenters"]] == ["EUR-IS-1"]
    # No machine with 9: unavailable everywhere, so dataCenters is omitted entirely.
    nine = api.call("GET", f"/v2/catalog/gpus/{quote(gpu)}?include=AVAILABILITY&product=POD&count=9")[2]
    assert nine["availability"] == "NONE" and "dataCenters" not in nine
    assert api.call("GET", f"/v2/catalog/gpus/{quote(gpu)}?include=AVAILABILITY")[0] == 400  # needs product
    assert api.call("GET", "/v2/catalog/gpus/NVIDIA%20Nothing")[0] == 404
    body = api.call("GET", "/v2/catalog/datacenters")[2]
    kinds = {d["id"]: d["networkVolumeTypes"] for d in body["dataCenters"]}
    assert kinds["EU-RO-1"] == ["STANDARD", "HIGH_PERFORMANCE"] and kinds["US-TX-3"] == []
    ro = next(d for d in body["dataCenters"] if d["id"] == "EU-RO-1")
    assert ro["region"] == "EUROPE" and "GDPR" in ro["compliance"] and ro["globalNetwork"] is True


def test_v2_catalog_filters_the_spec_documents(fake_runpod, api):
    gpu = quote("NVIDIA GeForce RTX 4090")
    ids = lambda q: [g["id"] for g in api.call("GET", "/v2/catalog/gpus" + q)[2]["gpus"]]  # noqa: E731
    assert "NVIDIA GeForce RTX 4090" in ids("?countryCodes=RO,DE")
    fake_runpod.set_stock("NVIDIA GeForce RTX 4090", ["EU-RO-1"])
    assert "NVIDIA GeForce RTX 4090" not in ids("?countryCodes=US")
    assert ids("?cudaVersions=12.8") == ids("")  # every type has 12.8 hosts
    assert ids("?minCudaVersion=13.0") == []
    body = api.call("GET", f"/v2/catalog/gpus/{gpu}?include=AVAILABILITY&product=POD&cudaVersions=12.6,12.8")[2]
    assert body["cudaVersions"] == [{"version": "12.6", "available": True}, {"version": "12.8", "available": True}]
    community = api.call("GET", f"/v2/catalog/gpus/{gpu}?include=AVAILABILITY&product=POD&cloud=COMMUNITY&count=8")[2]
    assert community["availability"] == "NONE"  # maxCount.community is 4
    eu = api.call("GET", "/v2/catalog/datacenters?regions=EUROPE&networkVolumeTypes=HIGH_PERFORMANCE")[2]
    assert sorted(d["id"] for d in eu["dataCenters"]) == ["EU-RO-1", "EUR-IS-1"]
    gpus = api.call("GET", "/v2/catalog/datacenters?include=GPU_AVAILABILITY")[2]["dataCenters"]
    assert [g["id"] for g in next(d for d in gpus if d["id"] == "EU-RO-1")["gpuAvailability"]][:1] == [
        "NVIDIA GeForce RTX 4090"
    ]
    with fake_runpod.off_spec():
        assert api.call("GET", "/v2/catalog/gpus?region=EU")[0] == 400  # not a parameter of the spec


def test_v2_create_takes_min_ram_and_vcpu_per_gpu_and_honours_gpu_stock(fake_runpod, api):
    body = pod_body()
    body["gpu"] = {**body["gpu"], "minRamPerGpu": 16, "minVcpuCountPerGpu": 4}
    status, _, pod = api.call("POST", "/v2/pods", body)
    assert status == 201, pod
    bad = pod_body()
    bad["gpu"] = {**bad["gpu"], "minRamPerGpu": "16"}
    with fake_runpod.off_spec():
        assert api.call("POST", "/v2/pods", bad)[0] == 422
    status, _, err = api.call("POST", "/v2/pods", {**pod_body(), "dataCenterIds": ["US-KS-2"]})
    assert status == 400 and "no longer any instances" in err["detail"]  # no RTX 4090 there
    status, _, err = api.call("POST", "/v2/pods", {**pod_body(), "dataCenterIds": ["EU-XX-9"]})
    assert status == 400 and "does not exist" in err["detail"]


# ---------------------------------------------------------------- controls over HTTP and the CLI
def test_controls_over_http(fake_runpod):
    ctl = Api(fake_runpod, None)
    assert ctl.call("POST", "/_fake/boot_seconds", {"seconds": 0})[0] == 200
    assert ctl.call("POST", "/_fake/ssh_target", {"host": "127.0.0.1", "ports": [2222]})[0] == 200
    vol = ctl.call("POST", "/_fake/add_volume", {"name": "v", "data_center": "EU-RO-1"})[2]
    pod = ctl.call("POST", "/_fake/add_pod", {"name": "p", "volume_id": vol["id"]})[2]
    assert pod["status"] == "RUNNING" and pod["ssh_port"] == 2222 and pod["data_center"] == "EU-RO-1"
    assert ctl.call("POST", "/_fake/preempt", {"pod_id": pod["id"]})[2]["last_status_change"].startswith("Outbid: ")
    assert ctl.call("POST", "/_fake/inject", {"operation": "rest:GET /v2/pods", "error": "transient"})[0] == 200
    assert Api(fake_runpod).call("GET", "/v2/pods")[0] == 502
    key = ctl.call("GET", f"/_fake/pods/{pod['id']}/api_key")[2]["api_key"]
    assert key == fake_runpod.pod_api_key(pod["id"])
    state = ctl.call("GET", "/_fake/state")[2]
    assert state["pods"][pod["id"]]["status"] == "EXITED" and vol["id"] in state["volumes"]
    assert [r["status"] for r in ctl.call("GET", "/_fake/requests")[2]] == [502]
    assert ctl.call("POST", "/_fake/remove_spot")[0] == 200 and not fake_runpod.state.spot_enabled
    assert ctl.call("POST", "/_fake/preempt", {"pod_id": "nope"})[0] == 400
    assert ctl.call("POST", "/_fake/nonsense")[0] == 404


def test_cli_runs_a_fake_by_hand():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "standins.runpod_api",
            "--port",
            "0",
            "--api-key",
            "cli-key",
            "--ssh-ports",
            "2201,2202",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        u = urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        conn.request("GET", "/v2/pods", headers={"Authorization": "Bearer cli-key"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["pods"] == []
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
