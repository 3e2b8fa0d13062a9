"""Findings 2 and 4: no stop depends on a write succeeding, on the volume or on this machine.

A 1 MiB volume (a real tmpfs) filled the way checkpoints fill a network volume: the end-of-run stop
and the idle stop still go out; a supervisor that died is noticed by the runner, which stops the pod.
A full local disk does not keep `runner stop` from stopping the pod.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from remote.podside.launch import volume_full_warning
from runner import cli
from standins.waiting import wait_for
from tests.fixtures.pod_harness import POD_ID, PodSandbox
from tests.fixtures.train_harness import shorten_timeouts, smoke_config, train_env  # noqa: F401  (fixture)
from tests.hostile.conftest import start_idle_watcher
from tests.runner.test_idle_stop import pod_stops, reaper  # noqa: F401  (fixture)
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pod_on_small_volume(tmp_path, venv_templates, small_volume):
    """A pretend pod whose volume (logs, state, the program) is 1 MiB; the repo and its venv elsewhere."""
    pod = PodSandbox(tmp_path / "pod", session=f"rt-full-{uuid.uuid4().hex[:10]}", venv_template=venv_templates["warm"])
    volume = small_volume(pod.workspace)
    yield pod, volume
    pod.cleanup()


def test_a_full_volume_does_not_keep_the_pod_from_stopping_at_the_end_of_the_run(pod_on_small_volume):
    pod, volume = pod_on_small_volume
    pod.write_config("configs/smoke.yaml", max_steps=400, save_steps=1000, step_seconds=0.02)
    pod.commit("a long enough run")
    run = pod.launch(RT_REPO_DIR=str(pod.root / "repo"))
    assert run.returncode == 0, run.stderr
    pod.wait_state("running")
    volume.fill()  # checkpoints fill the volume: every write of the run's end fails now
    wait_for(lambda: not pod.session_alive(), 60, "the supervisor to end")
    assert [c["argv"] for c in pod.runpodctl_calls()] == [["pod", "stop", POD_ID]]


def test_the_idle_stop_still_stops_a_pod_whose_volume_is_full(fake_runpod, tmp_path, small_volume, reaper):
    from standins.ports import free_port

    pod = fake_runpod.add_pod(status="RUNNING")
    workspace = tmp_path / "workspace"
    volume = small_volume(workspace)
    (workspace / ".runner").mkdir()
    (workspace / "logs").mkdir()
    volume.fill()
    start_idle_watcher(fake_runpod, pod.id, workspace, tmp_path, [free_port()])
    wait_for(lambda: fake_runpod.pods[pod.id].status == "EXITED", 30, "the idle pod to stop itself")
    assert len(pod_stops(fake_runpod, pod.id)) == 1


def test_a_launch_warns_when_the_volume_is_nearly_full(tmp_path, small_volume):
    volume = small_volume(tmp_path / "volume")
    assert volume_full_warning(str(volume.path)) is None
    volume.fill()
    warning = volume_full_warning(str(volume.path))
    assert warning is not None and "100% full" in warning and "checkpoints" in warning


def test_the_runner_stops_following_when_the_supervisor_is_gone_and_stops_the_pod(train_env, monkeypatch):  # noqa: F811
    """The supervisor and training die without a word (what a full volume did to them before): the
    runner must not follow a log that no longer grows, keeping the pod busy, but end and stop the pod."""
    env = train_env
    shorten_timeouts(monkeypatch, end_grace_s=0.3, state_poll_s=0.5, stop_verify_s=2.0)
    env.write_config("configs/smoke.yaml", smoke_config(max_steps=2000, save_steps=5000, step_seconds=0.05))
    env.add_pod("RUNNING")
    run = env.start("train", "--config", "configs/smoke.yaml")
    env.wait_state("running")
    env.wait_log("step 3/")
    state = env.state() or {}
    for pid in (state["supervisor_pid"], state["train_pid"]):  # not the runner's `tail -F` on the pod
        os.kill(pid, signal.SIGKILL)
    res = env.finish(run, timeout=60)
    assert res.code == 1, res.err
    assert "supervisor on the pod is gone" in res.err
    assert env.pod.status == "EXITED"
    assert [r for r in env.stop_requests() if r.auth == "account"], "the runner stopped the pod"


def test_runner_stop_stops_the_pod_when_the_local_disk_is_full(pod_env, small_volume, monkeypatch, capfd):  # noqa: F811
    state = small_volume(Path(pod_env.state_dir).parent / f"rt-full-{uuid.uuid4().hex[:8]}")
    pod_env.add_pod("RUNNING")
    monkeypatch.setenv("RUNNER_STATE_DIR", str(state.path / "state"))
    (state.path / "state").mkdir()
    state.fill()
    assert cli.main(["stop"]) == 0
    err = capfd.readouterr().err
    assert pod_env.pod.status == "EXITED"
    assert "could not record the stop" in err and "Traceback" not in err


def test_a_damaged_stop_log_is_reported_and_the_stop_goes_out(pod_env, capfd):  # noqa: F811
    pod_env.add_pod("RUNNING")
    stops = pod_env.state_dir / "dev" / "stops.json"
    stops.parent.mkdir(parents=True, exist_ok=True)
    stops.write_text(json.dumps({pod_env.pod_id: "not a record"}))
    assert cli.main(["stop"]) == 0
    err = capfd.readouterr().err
    assert pod_env.pod.status == "EXITED"
    assert f"{stops} is damaged" in err and "Delete it" in err
