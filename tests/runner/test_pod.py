"""StackPod (ensure_running, stop, state) against the fake RunPod API, with real TCP SSH-banner servers; the
state decision (RunPod's dialect and the runner's evidence) on its own."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace

import pytest

from backends.runpod.client import RunPodClient
from backends.runpod.dialect import facts
from backends.runpod.models import Pod, SshEndpoint
from backends.ssh_probe import probe_ssh
from runner.errors import (
    ApiAuthError,
    PodGone,
    PodNoCapacity,
    PodStartTimeout,
    SpotUnavailableError,
    StackError,
)
from runner.exitcodes import ExitCode
from runner.output import Waiting
from runner.pod.lifecycle import StartWait
from runner.pod.pod import StackPod
from runner.pod.stack_outputs import StackOutputs
from runner.pod.state import decide
from runner.pod.stops import StopLog

FAST = dict(first_poll_s=0.05, max_poll_s=0.2, probe_timeout_s=1.0)


def stack_pod(client, outputs: StackOutputs, tmp_path, *, deadline_s: float = 10.0) -> StackPod:
    return StackPod(outputs, client, StopLog(tmp_path / "stops.json"), start_timeout_s=deadline_s)


def ensure_running(client, outputs, tmp_path, *, deadline_s: float, say=lambda _m: None, **wait):
    return stack_pod(client, outputs, tmp_path, deadline_s=deadline_s).ensure_running(
        say=say, wait=StartWait(**{**FAST, **wait})
    )


def stop(client, pod_id: str, tmp_path):
    return stack_pod(client, StackOutputs(stack="dev", pod_id=pod_id), tmp_path).stop()


def classify(pod, *, stopped_by=None, spot=True):
    """The state StackPod.state decides for `pod` with this evidence."""
    return decide(
        facts(pod), stopped_by=stopped_by, spot=pod.interruptible if pod and pod.interruptible is not None else spot
    )


# ---------------------------------------------------------------- TCP stand-ins for the pod's sshd
class TcpServers:
    """Listeners on 127.0.0.1: `banner` ports answer like sshd, `silent` accepts and says nothing."""

    def __init__(self) -> None:
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self.banner = [self._listen(b"SSH-2.0-OpenSSH_9.6 fake\r\n") for _ in range(3)]
        self.silent = self._listen(None)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.closed = s.getsockname()[1]  # bound, never listening: connection refused
        self._socks.append(s)

    def _listen(self, banner: bytes | None) -> int:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.settimeout(0.1)
        self._socks.append(s)
        held: list[socket.socket] = []

        def serve() -> None:
            while not self._stop.is_set():
                try:
                    conn, _ = s.accept()
                except (TimeoutError, OSError):
                    continue
                if banner is None:
                    held.append(conn)  # keep it open and silent
                else:
                    try:
                        conn.sendall(banner)
                    finally:
                        conn.close()
            for c in held:
                c.close()

        threading.Thread(target=serve, daemon=True).start()
        return s.getsockname()[1]

    def close(self) -> None:
        self._stop.set()
        for s in self._socks:
            s.close()


@pytest.fixture
def tcp():
    servers = TcpServers()
    yield servers
    servers.close()


@pytest.fixture
def fake(fake_runpod, tcp):
    fake_runpod.set_ssh_target("127.0.0.1", tcp.banner)
    return fake_runpod


def outputs_for(fake_pod, **kw) -> StackOutputs:
    base = dict(
        stack="dev",
        pod_id=fake_pod.id,
        ssh_host="203.0.113.7",
        ssh_port=40022,
        ssh_user="root",
        volume_id=fake_pod.volume_id,
        data_center=fake_pod.data_center,
        gpu_type=fake_pod.gpu_type,
        gpu_count=fake_pod.gpu_count,
        market="spot" if fake_pod.interruptible else "on-demand",
        bid_per_gpu=0.35 if fake_pod.interruptible else None,
    )
    base.update(kw)
    return StackOutputs(**base)


@pytest.fixture
def run(tmp_path):
    def run(fake, outputs, *, deadline_s=10.0, **kw):
        messages: list[str] = []
        result = ensure_running(fake.client(), outputs, tmp_path, deadline_s=deadline_s, say=messages.append, **kw)
        return result, messages

    return run


def seeded(fake, **kw):
    return fake.add_pod(**kw)


# ---------------------------------------------------------------- classify (pure)
def make_pod(**kw) -> Pod:
    base = dict(
        id="p1",
        name="n",
        status="RUNNING",
        desired_status=None,
        interruptible=True,
        gpu_type="NVIDIA GeForce RTX 4090",
        gpu_count=1,
        cost_per_hr=0.35,
        data_center="EU-RO-1",
        volume_id="v1",
        ssh=SshEndpoint("1.2.3.4", 2201),
        last_status_change=None,
        started_at=None,
    )
    base.update(kw)
    return Pod(**base)


@pytest.mark.parametrize(
    "kw,expected",
    [
        ({}, "running"),
        ({"ssh": None}, "starting"),
        ({"status": "PROVISIONING", "ssh": None}, "starting"),
        ({"status": "STARTING", "ssh": None}, "starting"),
        (
            {"status": "EXITED", "ssh": None, "last_status_change": "Outbid: Wed Jul 29 2026 21:51:59 GMT+0000"},
            "preempted",
        ),
        ({"status": "EXITED", "ssh": None, "last_status_change": "OUTBID: x"}, "preempted"),
        ({"status": "EXITED", "ssh": None, "last_status_change": "Exited by user: Wed Jul 29 2026"}, "stopped_by_user"),
        (
            {"status": "EXITED", "ssh": None, "last_status_change": "Exited by Runpod: Wed Jul 29 2026"},
            "stopped_by_runpod",
        ),
        (
            {"status": "EXITED", "ssh": None, "last_status_change": "Exited by RunPod: Insufficient balance"},
            "stopped_by_runpod",
        ),
        ({"status": "ERROR", "ssh": None}, "stopped_by_runpod"),
        # GraphQL answered (a podType) but without a lastStatusChange: stopped by its owner.
        ({"status": "EXITED", "ssh": None, "last_status_change": None, "pod_type": "INTERRUPTABLE"}, "stopped_by_user"),
        ({"status": "TERMINATED", "ssh": None, "last_status_change": "Outbid: x"}, "gone"),
    ],
)
def test_classify(kw, expected):
    assert classify(make_pod(**kw)) == expected


NO_HISTORY = dict(status="EXITED", ssh=None, last_status_change=None, interruptible=None, started_at="t1")


@pytest.mark.parametrize(
    "kw,evidence,expected",
    [
        ({}, dict(spot=True), "preempted"),  # a spot stack, nobody here stopped it
        ({}, dict(spot=True, stopped_by="runner"), "stopped_by_user"),
        ({}, dict(spot=True, stopped_by="pod"), "stopped_by_user"),  # the pod's self-stop after training
        ({}, dict(spot=False), "stopped_by_user"),  # on-demand pods are not outbid
        ({"interruptible": False}, dict(spot=True), "stopped_by_user"),  # the API's market wins over the stack's
        ({"pod_type": "INTERRUPTABLE", "interruptible": True}, dict(spot=True), "stopped_by_user"),  # GraphQL answered
        ({"status": "ERROR"}, dict(spot=True), "stopped_by_runpod"),
    ],
)
def test_classify_without_graphql_history(kw, evidence, expected):
    assert classify(make_pod(**{**NO_HISTORY, **kw}), **evidence) == expected


def test_stop_log_is_per_pod_start(tmp_path):
    from runner.pod.stops import StopLog

    log = StopLog(tmp_path / "stops.json")
    first = make_pod(**NO_HISTORY)
    assert log.stopped_by(first) is None
    log.record(first, "runner")
    assert log.stopped_by(first) == "runner"
    assert log.stopped_by(replace(first, started_at="t2")) is None  # resumed since: a new start
    log.forget(replace(first, started_at="t2"))  # not this start's record: kept
    assert log.stopped_by(first) == "runner"
    log.forget(first)
    assert log.stopped_by(first) is None
    assert (tmp_path / "stops.json").stat().st_mode & 0o077 == 0  # private, like all local state


def test_classify_none_is_gone():
    assert classify(None) == "gone"


# ---------------------------------------------------------------- the banner probe
def test_probe_ssh_banner(tcp):
    assert probe_ssh("127.0.0.1", tcp.banner[0], 2.0).ok is True
    assert probe_ssh("127.0.0.1", tcp.silent, 0.3).ok is False
    assert probe_ssh("127.0.0.1", tcp.closed, 0.3).ok is False


# ---------------------------------------------------------------- ensure_running
def test_running_pod_uses_current_endpoint_not_stack_outputs(fake, run):
    p = seeded(fake, status="RUNNING")
    result, _ = run(fake, outputs_for(p))
    assert result.resumed is False
    assert result.ssh == SshEndpoint("127.0.0.1", fake.pods[p.id].ssh_port, "root")
    assert result.ssh.port != 40022
    assert fake.billable_calls() == []


def test_preempted_spot_pod_is_resumed_with_the_stacks_bid(fake, run):
    p = seeded(fake, status="RUNNING", gpu_count=1, bid_per_gpu=0.25)
    fake.preempt(p.id)
    result, messages = run(fake, outputs_for(p, bid_per_gpu=0.35))
    assert result.resumed is True
    assert fake.pods[p.id].status == "RUNNING"
    assert fake.pods[p.id].bid_per_gpu == 0.35
    [call] = fake.billable_calls()
    assert call.operation == "podBidResume"
    assert any("preempted" in m for m in messages)
    assert any("$0.350" in m for m in messages)


def test_stopped_spot_pod_resume_passes_gpu_count(fake, run):
    p = seeded(fake, status="EXITED", gpu_count=2)
    result, _ = run(fake, outputs_for(p, gpu_count=2))
    assert result.resumed and fake.pods[p.id].gpu_count == 2


def test_stopped_on_demand_pod_is_started(fake, run):
    p = seeded(fake, status="EXITED", interruptible=False)
    result, messages = run(fake, outputs_for(p))
    assert result.resumed is True and fake.pods[p.id].status == "RUNNING"
    [call] = fake.billable_calls()
    assert call.method == "POST" and call.path == f"/v2/pods/{p.id}/action" and call.action == "start"
    assert any("on-demand" in m for m in messages)


def test_port_changes_after_restart(fake, run):
    p = seeded(fake, status="RUNNING")
    first, _ = run(fake, outputs_for(p))
    fake.client().stop_pod(p.id)
    second, _ = run(fake, outputs_for(p, ssh_port=first.ssh.port))
    assert second.resumed
    assert second.ssh.port != first.ssh.port
    assert second.ssh.port == fake.pods[p.id].ssh_port


def test_waits_through_boot_and_reports_progress(fake, run):
    fake.boot_seconds = 0.6
    p = seeded(fake, status="EXITED")
    result, messages = run(fake, outputs_for(p))
    assert result.pod.status == "RUNNING"
    # redrawn with their time on a terminal (runner/output.py), each once when piped
    assert any(isinstance(m, Waiting) and m.startswith("waiting for pod") and m.limit_s == 10 for m in messages)
    assert any(isinstance(m, Waiting) and "waiting for sshd at" in m for m in messages)


@pytest.mark.parametrize("how", ["unknown", "terminated", "preempted-terminated"])
def test_gone_pod(fake, how, run):
    if how == "unknown":
        out = StackOutputs(stack="dev", pod_id="doesnotexist42")
    else:
        p = seeded(fake, status="RUNNING")
        if how == "terminated":
            fake.client().terminate_pod(p.id)
        else:
            fake.preempt(p.id, terminate=True)
        out = outputs_for(p)
    with pytest.raises(PodGone) as e:
        run(fake, out)
    assert "pulumi up" in e.value.message and e.value.recoverable and e.value.exit_code == ExitCode.POD
    assert fake.billable_calls() == []


@pytest.mark.parametrize("error", ["no_capacity", "not_enough_gpus_on_host"])
def test_no_capacity_on_resume(fake, error, run):
    p = seeded(fake, status="RUNNING")
    fake.preempt(p.id)
    fake.inject("podBidResume", error)
    with pytest.raises(PodNoCapacity) as e:
        run(fake, outputs_for(p))
    assert e.value.recoverable and "pulumi up --refresh" in e.value.message
    assert fake.pods[p.id].status == "EXITED"


def test_spot_withdrawn(fake, run):
    p = seeded(fake, status="EXITED")
    fake.remove_spot()
    with pytest.raises(SpotUnavailableError) as e:
        run(fake, outputs_for(p))
    assert "on-demand" in e.value.message


def test_market_unknown_to_the_api_and_wrong_in_outputs(fake, tmp_path):
    """When the API does not say spot/on-demand and the stack's market is wrong, RunPod's refusal
    ("Cannot resume a spot pod as an on demand pod.") leads to the right call, once."""
    p = seeded(fake, status="EXITED")  # a spot pod

    class NoMarketClient(RunPodClient):
        def find_pod(self, pod_id, *, with_history=False):
            pod = super().find_pod(pod_id, with_history=with_history)
            return replace(pod, interruptible=None) if pod else None

        def add_history(self, pod):
            return pod  # no history says it either

    client = NoMarketClient(fake.api_key, rest_url=fake.rest_url, graphql_url=fake.graphql_url, sleep=lambda _s: None)
    result = ensure_running(client, outputs_for(p, market="on-demand", bid_per_gpu=0.3), tmp_path, deadline_s=10)
    assert result.resumed and fake.pods[p.id].status == "RUNNING"
    refused, resumed = fake.billable_calls()
    assert refused.path.endswith("/action") and refused.status == 409
    assert resumed.operation == "podBidResume" and resumed.status == 200


def test_spot_pod_without_bid_in_outputs_spends_nothing(fake, run):
    p = seeded(fake, status="EXITED")
    with pytest.raises(StackError, match="bid_per_gpu"):
        run(fake, outputs_for(p, bid_per_gpu=None))
    assert fake.billable_calls() == []


def test_wrong_api_key(fake, tmp_path):
    p = seeded(fake, status="RUNNING")
    client = RunPodClient(
        "rpa_WRONG_KEY_000000", rest_url=fake.rest_url, graphql_url=fake.graphql_url, sleep=lambda _s: None
    )
    with pytest.raises(ApiAuthError) as e:
        ensure_running(client, outputs_for(p), tmp_path, deadline_s=5)
    assert "RUNPOD_API_KEY" in e.value.message and e.value.exit_code == ExitCode.API
    assert fake.billable_calls() == []


def test_timeout_while_booting(fake, run):
    fake.boot_seconds = 60
    p = seeded(fake, status="EXITED")
    with pytest.raises(PodStartTimeout) as e:
        run(fake, outputs_for(p), deadline_s=0.5)
    assert "within 0s" not in e.value.message
    assert "PROVISIONING" in e.value.message or "STARTING" in e.value.message
    assert "POD_START_TIMEOUT" in e.value.message


def test_timeout_when_port_gives_no_ssh_banner(fake, tcp, run):
    fake.set_ssh_target("127.0.0.1", [tcp.silent])
    p = seeded(fake, status="RUNNING")
    with pytest.raises(PodStartTimeout, match="no SSH banner"):
        run(fake, outputs_for(p), deadline_s=0.6, probe_timeout_s=0.2)


def test_stale_endpoint_is_reread_until_sshd_answers(fake, monkeypatch, run):
    """The first endpoint after a start can be stale: a failed probe leads to a fresh read."""
    p = seeded(fake, status="RUNNING")
    probes: list[int] = []

    def probe(host, port, timeout):
        probes.append(port)
        return len(probes) >= 3

    result, _ = run(fake, outputs_for(p), probe=probe)
    assert len(probes) == 3 and result.ssh.port == probes[-1]


# ---------------------------------------------------------------- stop_pod
def test_stop_is_idempotent(fake, tmp_path):
    p = seeded(fake, status="RUNNING")
    client = fake.client()
    first = stop(client, p.id, tmp_path)
    assert first.stopped and first.previous == "running" and fake.pods[p.id].status == "EXITED"
    second = stop(client, p.id, tmp_path)
    assert not second.stopped and second.previous == "stopped_by_user"
    assert fake.pods[p.id].status == "EXITED"


def test_stop_a_gone_pod_is_fine(fake, tmp_path):
    result = stop(fake.client(), "doesnotexist42", tmp_path)
    assert result.previous == "gone" and not result.stopped and result.pod is None


def test_stop_a_preempted_pod_reports_it(fake, tmp_path):
    p = seeded(fake, status="RUNNING")
    fake.preempt(p.id)
    result = stop(fake.client(), p.id, tmp_path)
    assert result.previous == "preempted" and not result.stopped


def test_state_through_the_api(fake, tmp_path):
    client = fake.client()

    def state(pod_id: str) -> str:
        return stack_pod(client, StackOutputs(stack="dev", pod_id=pod_id), tmp_path).look().state

    p = seeded(fake, status="RUNNING")
    assert state(p.id) == "running"
    fake.preempt(p.id)
    assert state(p.id) == "preempted"
    q = seeded(fake, status="RUNNING", interruptible=False)
    client.stop_pod(q.id)
    assert state(q.id) == "stopped_by_user"
    r = seeded(fake, status="RUNNING")
    fake.platform_stop(r.id)
    assert state(r.id) == "stopped_by_runpod"
    s = seeded(fake, status="RUNNING")
    fake.platform_stop(s.id, error=True)
    assert state(s.id) == "stopped_by_runpod"
    assert state("doesnotexist42") == "gone"


def test_state_without_graphql_history_uses_this_machines_stops(fake, tmp_path):
    """After GraphQL's retirement: the same reading for `status`, `doctor`, `stop` and recovery, because
    StackPod decides it once with the evidence (the runner's own stop of this start is not a preemption)."""
    client = fake.client()
    fake.retire_graphql()
    p = seeded(fake, status="RUNNING")
    outputs = StackOutputs(stack="dev", pod_id=p.id)
    pod = stack_pod(client, outputs, tmp_path)
    assert pod.stop().stopped
    assert pod.look().state == "stopped_by_user"  # the runner's stop, recorded before the request
    q = seeded(fake, status="RUNNING")
    fake.preempt(q.id)
    assert stack_pod(client, StackOutputs(stack="dev", pod_id=q.id), tmp_path).look().state == "preempted"
