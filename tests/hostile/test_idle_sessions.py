"""Finding 5: anyone on the Internet could hold the idle stop off with a TCP connection to the pod's
sshd that never authenticates. Only authenticated SSH connections count now (remote/podside/idlewatch.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

from remote.podside import bundle
from remote.podside.contract import IdleKey
from runner.remote.hostkeys import expect_host_key
from runner.remote.ssh import SshConnection, SshTarget
from standins.waiting import wait_for
from tests.hostile.conftest import start_idle_watcher
from tests.runner.test_idle_stop import idle_status, pod_stops, reaper  # noqa: F401  (fixture)


def test_a_raw_tcp_connection_to_sshd_does_not_hold_the_idle_stop_off(fake_runpod, sshd, tmp_path, reaper):
    pod = fake_runpod.add_pod(status="RUNNING")
    sshd.ensure_running()
    raws = [socket.create_connection((sshd.host, port), timeout=10) for port in sshd.ports]
    try:
        for raw in raws:
            assert raw.recv(64).startswith(b"SSH-")  # an sshd connection, never authenticated
        start_idle_watcher(fake_runpod, pod.id, tmp_path / "workspace", tmp_path, sshd.ports)
        wait_for(lambda: fake_runpod.pods[pod.id].status == "EXITED", 30, "the idle pod to stop itself")
        assert all(raw.fileno() >= 0 for raw in raws)  # still open while the pod stopped
    finally:
        for raw in raws:
            raw.close()
    assert len(pod_stops(fake_runpod, pod.id)) == 1


def test_an_authenticated_session_still_holds_it_off(fake_runpod, sshd, tmp_path, reaper):
    pod = fake_runpod.add_pod(status="RUNNING")
    sshd.ensure_running()
    session = SshConnection.open(
        SshTarget(sshd.host, sshd.port, sshd.user, sshd.key_path),
        host_key_check=expect_host_key(sshd.known_host_key),
        timeout=10,
    )
    try:
        start_idle_watcher(fake_runpod, pod.id, tmp_path / "workspace", tmp_path, sshd.ports)
        wait_for(lambda: idle_status(tmp_path / "workspace").get(IdleKey.CHECKS, 0) >= 10, 30, "ten checks")
        assert fake_runpod.pods[pod.id].status == "RUNNING" and pod_stops(fake_runpod, pod.id) == []
    finally:
        session.close()
