"""The idle stop on the stand-in pod: a pod with no training, no SSH session and no tunnel stops
itself through the API with its own key; it never stops during training or while someone is
connected (remote/podside/idlewatch.py, docs/guide/idle-stop.md).

The fake RunPod API's call log tells who stopped the pod: `auth == "pod:<id>"` is the pod's own key.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from infra.pod_resource import PodArgs
from remote.podside import bundle
from remote.podside.contract import IdleKey, VolumePaths
from runner import cli
from runner.remote.hostkeys import expect_host_key
from runner.remote.ssh import SshConnection, SshTarget
from standins.ports import free_port
from standins.preemption import processes_under
from tests.fixtures.train_harness import smoke_config, train_env, wait_for  # noqa: F401
from tests.runner.test_sync import make_tree, pod_env, pod_sshd  # noqa: F401

CONFIG = "configs/smoke.yaml"


def pod_stops(fake, pod_id: str) -> list:
    """Stops the pod asked for with its own key (the idle stop, or the end of a run)."""
    return [r for r in fake.requests if r.action == "stop" and r.auth == f"pod:{pod_id}" and r.status == 200]


def idle_status(workspace: Path) -> dict:
    try:
        return json.loads(Path(VolumePaths(str(workspace)).idle_watch).read_text())
    except (OSError, ValueError):
        return {}


def marker(workspace: Path) -> dict:
    return json.loads(Path(VolumePaths(str(workspace)).self_stop_marker).read_text())


@pytest.fixture
def reaper(tmp_path):
    """Kills whatever a test left running under its tmp dir (watchers, the container's command)."""
    yield
    for pid in processes_under(tmp_path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_start_command_pulumi_up_gives_the_pod_stops_it_when_idle(fake_runpod, tmp_path, reaper):
    """What RunPod runs when the container starts: the watcher next to the image's /start.sh."""
    workspace = tmp_path / "workspace"
    vol = fake_runpod.add_volume()
    args = PodArgs(
        pod_name="idle-test",
        image="runpod/pytorch:x",
        gpu_type="NVIDIA GeForce RTX 4090",
        gpu_count=1,
        data_center=vol.data_center,
        volume_id=vol.id,
        container_disk_gb=20,
        bid_per_gpu=0.5,
        spot_fallback="fail",
        max_on_demand_price_per_gpu=None,
        create_timeout_s=60,
        volume_mount_path=str(workspace),
        idle_stop_minutes=1,
    )
    spec = args.spec()
    # The provider's create sends it; 1 minute is the smallest setting, the test's container runs 1 s.
    pod = fake_runpod.client().create_on_demand_pod(spec)
    sent = fake_runpod.pods[pod.id].args
    assert sent == spec.start_command and "--idle-seconds 60 " in sent
    started = tmp_path / "image-started"
    image_start = tmp_path / "start.sh"  # stands in for the image's /start.sh (sshd, keys, sleep)
    image_start.write_text(f"#!/bin/sh\necho sshd-and-friends > {started}\nexec sleep 300\n")
    image_start.chmod(0o755)
    wait_for(lambda: fake_runpod.pods[pod.id].status == "RUNNING", 10, "the pod to run")
    container_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        **fake_runpod.rp_environment(pod.id),
        "RUNPOD_REST_URL": fake_runpod.rest_url,
        "RT_IMAGE_START": str(image_start),
        "RT_IDLE_SSH_PORTS": str(free_port()),
    }
    command = shlex.split(sent.replace("--idle-seconds 60 ", "--idle-seconds 1 "))
    container = subprocess.Popen(command, env=container_env, start_new_session=True)
    try:
        wait_for(lambda: started.exists(), 20, "the image's own start script to run")
        wait_for(lambda: fake_runpod.pods[pod.id].status == "EXITED", 30, "the idle pod to stop itself")
        assert container.poll() is None, "the start command must become the image's start script and keep running"
    finally:
        os.killpg(container.pid, signal.SIGKILL)
        container.wait()
    assert len(pod_stops(fake_runpod, pod.id)) == 1
    assert marker(workspace)["reason"] == "idle"
    log = workspace / "logs" / "idlewatch.log"
    wait_for(
        lambda: "asked RunPod to stop this pod (REST v2)" in log.read_text(),
        10,
        "the watcher to log the stop it asked for",
    )


def test_an_open_ssh_session_keeps_the_pod_up_and_closing_it_lets_it_stop(fake_runpod, sshd, tmp_path, reaper):
    pod = fake_runpod.add_pod(status="RUNNING")
    workspace = tmp_path / "workspace"
    rp_env = tmp_path / "rp_environment"
    rp_env.write_text(
        "".join(
            f'export {k}="{v}"\n'
            for k, v in {**fake_runpod.rp_environment(pod.id), "RUNPOD_REST_URL": fake_runpod.rest_url}.items()
        )
    )
    sshd.ensure_running()
    session = SshConnection.open(
        SshTarget(sshd.host, sshd.port, sshd.user, sshd.key_path),
        host_key_check=expect_host_key(sshd.known_host_key),
        timeout=10,
    )
    try:
        script = bundle.idle_watch_script(1.0, str(workspace), str(rp_env))
        subprocess.run(
            ["bash", "-s"],
            input=script.encode(),
            check=True,
            timeout=30,
            env={**os.environ, "RT_IDLE_SSH_PORTS": str(sshd.port)},
        )
        # Busy for well over the idle time (checks every 0.2 s, idle after 1 s): still running.
        status = wait_for(
            lambda: (s := idle_status(workspace)).get(IdleKey.CHECKS, 0) >= 15 and s,
            30,
            "the watcher to check 15 times",
        )
        assert any("SSH connection" in reason for reason in status[IdleKey.BUSY]), status
        assert fake_runpod.pods[pod.id].status == "RUNNING" and pod_stops(fake_runpod, pod.id) == []
    finally:
        session.close()
    closed_at = time.time()
    wait_for(lambda: fake_runpod.pods[pod.id].status == "EXITED", 30, "the pod to stop once the session closed")
    stops = pod_stops(fake_runpod, pod.id)
    assert len(stops) == 1 and stops[0].time >= closed_at + 0.9


def only_this_pods_sshd(monkeypatch, sshd) -> None:
    """Count connections to this test's sshd only (RT_IDLE_SSH_PORTS, passed through to the launcher),
    not to every sshd of the machine, which is what the watcher would find by itself."""
    monkeypatch.setenv("RT_IDLE_SSH_PORTS", ",".join(map(str, sshd.ports)))


def test_a_pod_kept_after_training_stops_itself_once_idle(train_env, monkeypatch, reaper):
    env = train_env
    only_this_pods_sshd(monkeypatch, env.sshd)
    env.add_pod("RUNNING", outputs={"idle_stop_minutes": 0.02})  # 1.2 s
    res = env.run("train", "--config", CONFIG, "--keep-pod")
    ended = time.time()
    assert res.code == 0, res.err
    assert "/h until it stops itself after 0.02 min idle" in res.err and "still running (--keep-pod)" in res.err
    wait_for(lambda: env.pod.status == "EXITED", 30, "the kept pod to stop itself when idle")
    stops = pod_stops(env.fake, env.pod_id)
    assert len(stops) == 1 and stops[0].time >= ended
    assert marker(env.workspace)["reason"] == "idle"
    assert [r for r in env.fake.requests if r.action == "stop" and r.auth == "account"] == []


def test_a_long_training_run_is_never_stopped_as_idle(train_env, monkeypatch, reaper):
    env = train_env
    only_this_pods_sshd(monkeypatch, env.sshd)
    env.write_config(CONFIG, smoke_config(max_steps=40, save_steps=20, step_seconds=0.1))
    env.add_pod("RUNNING", outputs={"idle_stop_minutes": 0.01})  # 0.6 s; training takes 4 s
    res = env.run("train", "--config", CONFIG, "--detach", "--keep-pod")
    assert res.code == 0, res.err
    # Nobody connected (the runner detached), training running: the watcher checks and stays put.
    env.wait_state("running")
    status = wait_for(
        lambda: (s := idle_status(env.workspace)).get(IdleKey.CHECKS, 0) >= 10 and s,
        30,
        "the watcher to check 10 times",
    )
    assert (env.state() or {}).get("state") == "running", "training ended too soon for this test"
    assert any(reason.startswith("training (") for reason in status[IdleKey.BUSY]), status
    assert env.pod.status == "RUNNING" and pod_stops(env.fake, env.pod_id) == []
    env.wait_state("succeeded", timeout=60)
    training_ended = time.time()
    wait_for(lambda: env.pod.status == "EXITED", 30, "the pod to stop itself after the run")
    assert pod_stops(env.fake, env.pod_id)[0].time >= training_ended


def test_sync_keep_running_gives_the_pod_it_started_the_idle_stop(pod_env, capfd, monkeypatch, tmp_path, reaper):
    env = pod_env
    make_tree(env.project / "data", {"a.txt": "a\n"})
    pod_id = env.add_pod("EXITED", idle_stop_minutes=0.02)
    rp_env = tmp_path / "rp_environment"
    rp_env.write_text(
        "".join(
            f'export {k}="{v}"\n'
            for k, v in {**env.fake.rp_environment(pod_id), "RUNPOD_REST_URL": env.fake.rest_url}.items()
        )
    )
    monkeypatch.setenv("RT_RP_ENV_FILE", str(rp_env))
    # The sync's control master stays connected SSH_CONTROL_PERSIST seconds, and the watcher counts it as a
    # session: the stop comes that much later, and no later than that plus the idle time.
    monkeypatch.setenv("SSH_CONTROL_PERSIST", "2")
    only_this_pods_sshd(monkeypatch, env.sshd)
    assert cli.main(["sync", "--keep-running"]) == 0
    assert "keeps running (--keep-running): it stops itself after 0.02 min" in capfd.readouterr().err
    synced = time.time()
    assert [p for p in (env.state_dir / "dev" / "cm").iterdir() if p.is_socket()], "the sync left no master"
    wait_for(lambda: env.pod.status == "EXITED", 30, "the pod sync left running to stop itself when idle")
    stops = pod_stops(env.fake, pod_id)
    assert len(stops) == 1 and stops[0].time >= synced + 2


def test_a_sync_that_stops_the_pod_again_starts_no_watcher(pod_env, capfd, monkeypatch, reaper):
    env = pod_env
    make_tree(env.project / "data", {"a.txt": "a\n"})
    env.add_pod("EXITED", idle_stop_minutes=0.02)
    only_this_pods_sshd(monkeypatch, env.sshd)
    assert cli.main(["sync"]) == 0, capfd.readouterr().err
    assert env.pod.status == "EXITED"
    # The idle script makes <workspace>/logs before it returns: neither it nor the watcher's status is there.
    assert not (env.workspace / "logs").exists() and not Path(VolumePaths(str(env.workspace)).idle_watch).exists()
