"""The pod resumes its own run when its container starts (remote/podside/autoresume.py), for real: the
pod's start command (bundle.start_command) run as RunPod runs it, on the stand-in pod (bash, tmux, git,
the program on the volume), after the "container" died under a run (tests/fixtures/pod_harness.py
PodSandbox.kill_container), with a webhook on 127.0.0.1 receiving the pod's notifications."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import uuid

import pytest

from remote.podside.contract import HoldKey, HoldReason
from tests.fixtures.pod_harness import POD_API_KEY, PodSandbox, StopApiServer, WebhookSink, git, wait_for


def checkpoints_dir(pod: PodSandbox):
    return pod.repo_dir / "checkpoints" / "smoke"


def interrupted_run(pod: PodSandbox, sink: WebhookSink, how: str = "preempted", **env: str) -> dict:
    """Attempt 1 of run r1 trains until checkpoint-10 is complete; then the container goes: SIGTERM first
    (a spot preemption: state preempted) or not (lost: state running), then everything SIGKILLed."""
    pod.write_config("configs/smoke.yaml", max_steps=30, save_steps=5, step_seconds=0.15)
    pod.commit("30 slow steps")
    run = pod.launch(RT_RUN_ID="r1", RT_NOTIFY_URLS=sink.url(), **env)
    assert run.returncode == 0, run.stderr
    wait_for(
        lambda: (checkpoints_dir(pod) / "checkpoint-10" / "trainer_state.json").exists(),
        60,
        "checkpoint-10 to be saved",
    )
    if how == "preempted":
        os.kill(pod.supervisor_pid(), signal.SIGTERM)
        pod.wait_state("preempted")
    pod.kill_container()
    state = pod.state()
    assert state["attempt"] == 1 and state["state"] == ("preempted" if how == "preempted" else "running")
    return state


def autoresume_done(pod: PodSandbox, line: str, timeout: float = 60) -> str:
    """Wait for the auto-resume's decision line in logs/autoresume.log and for it to exit."""
    wait_for(lambda: line in pod.autoresume_log(), timeout, f"{line!r} in autoresume.log ({pod.autoresume_log()!r})")
    wait_for(lambda: not pod.processes_running("autoresume --workspace"), 30, "the auto-resume to exit")
    return pod.autoresume_log()


def test_the_start_command_relaunches_an_unfinished_run_from_its_newest_checkpoint_at_its_commit(pod, sink):
    first = interrupted_run(pod, sink)
    commit = git(pod.repo_dir, "rev-parse", "HEAD")
    # New code on origin, and the pod's checkout moved to it meanwhile: the run must not take it mid-run.
    pod.write_config("configs/smoke.yaml", max_steps=50, save_steps=5, step_seconds=0.15)
    pod.commit("new code: 50 steps")
    git(pod.repo_dir, "pull", "-q", "--ff-only")
    assert git(pod.repo_dir, "rev-parse", "HEAD") != commit

    started = pod.start_container()
    assert started.returncode == 0, started.stderr
    assert (pod.records / "image-start").read_text() == "started\n", "the image's own start script still runs"
    state = pod.wait_state("setup", "running", "succeeded", timeout=60)
    assert state["run_id"] == "r1" and state["attempt"] == 2
    assert state["resume_from"] == first["last_checkpoint"] != None  # noqa: E711
    state = pod.wait_finished(timeout=120)
    assert state["state"] == "succeeded" and state["attempt"] == 2
    assert git(pod.repo_dir, "rev-parse", "HEAD") == commit, "exactly the run's commit"
    log = pod.log_text()
    assert f"resumed from {os.path.basename(first['last_checkpoint'])}" in log and "done: 30 steps" in log
    assert "resuming run r1: attempt 1 was preempted" in autoresume_done(pod, "resuming run r1")

    events = pod.events("r1")
    assert [(e["id"], e["source"]) for e in events] == [
        ("r1:1:started", "pod"),
        ("r1:2:recovered", "pod"),
        ("r1:2:finished", "pod"),
    ]
    assert events[1]["checkpoint"] == first["last_checkpoint"] and events[2]["step"] == 30
    received = sink.wait_events("started", "recovered", "finished")
    assert sorted(e["id"] for e in received) == ["r1:1:started", "r1:2:finished", "r1:2:recovered"], "once each"
    assert pod.runpodctl_calls(), "the pod stopped itself at the end, as after any run"


def test_two_container_starts_at_once_launch_one_attempt(pod, sink):
    interrupted_run(pod, sink, how="lost")  # SIGKILL: state still says running, its supervisor is gone
    results: list[subprocess.CompletedProcess] = []
    starts = [threading.Thread(target=lambda: results.append(pod.start_container())) for _ in range(2)]
    for t in starts:
        t.start()
    for t in starts:
        t.join()
    assert [r.returncode for r in results] == [0, 0]
    wait_for(lambda: pod.autoresume_log().count("[autoresume]") >= 2, 60, "both auto-resumes to decide")
    wait_for(lambda: not pod.processes_running("autoresume --workspace"), 60, "both auto-resumes to exit")
    log = pod.autoresume_log()
    assert log.count("resuming run r1: attempt 1 was running") == 1, log
    assert "attempt 2 is" in log or '"status": "already-running"' in log, log
    state = pod.wait_finished(timeout=120)
    assert state["attempt"] == 2 and state["state"] == "succeeded"
    assert [e["id"] for e in pod.events("r1")] == ["r1:1:started", "r1:2:recovered", "r1:2:finished"]
    sink.wait_events("finished")
    assert [e["event"] for e in sink.events()].count("recovered") == 1


def write_hold(pod: PodSandbox, attempt: int) -> None:
    (pod.workspace / ".runner" / "hold.json").write_text(
        json.dumps(
            {HoldKey.RUN_ID: "r1", HoldKey.ATTEMPT: attempt, HoldKey.AT: "2026-01-01T00:00:00Z", HoldKey.REASON: "stop"}
        )
    )


@pytest.mark.parametrize(
    "case, env, expected",
    [
        ("held", {}, "run r1 is held (stopped on purpose"),
        ("opted out", {"RT_AUTO_RESUME": "0"}, "auto-resume is off for this stack"),
        ("over the limit", {"RT_MAX_RECOVERIES": "0"}, "the run already recovered 0 time(s), its limit"),
    ],
)
def test_a_held_opted_out_or_over_the_limit_run_is_not_resumed(pod, sink, case, env, expected):
    before = interrupted_run(pod, sink, **env)
    if case == "held":
        write_hold(pod, 1)
    pod.start_container()
    autoresume_done(pod, expected)
    assert pod.state() == before and not pod.session_alive()
    gave_up = [e for e in pod.events("r1") if e["event"] == "gave-up"]
    if case == "over the limit":
        assert [e["id"] for e in gave_up] == ["r1:1:gave-up"] and expected in gave_up[0]["message"]
        sink.wait_events("gave-up")
        pod.start_container()  # the next start: the same decision, not a second notification
        wait_for(lambda: pod.autoresume_log().count(expected) == 2, 60, "the second start's decision")
        assert [e["event"] for e in pod.events("r1")].count("gave-up") == 1
    else:
        assert gave_up == []


def test_a_finished_run_is_not_resumed(pod, sink):
    pod.write_config("configs/smoke.yaml", max_steps=5, step_seconds=0)
    pod.commit("short")
    assert pod.launch(RT_RUN_ID="r1", RT_NOTIFY_URLS=sink.url()).returncode == 0
    done = pod.wait_finished()
    assert done["state"] == "succeeded"
    pod.kill_container()
    pod.start_container()
    autoresume_done(pod, "run r1 attempt 1 is succeeded: nothing to resume")
    assert pod.state() == done


def test_a_sigterm_after_the_runner_held_the_run_records_stopped_and_nothing_resumes_it(pod, sink):
    pod.write_config("configs/smoke.yaml", max_steps=400, save_steps=5, step_seconds=0.05)
    pod.commit("long")
    assert pod.launch(RT_RUN_ID="r1", RT_NOTIFY_URLS=sink.url()).returncode == 0
    pod.wait_state("running")
    write_hold(pod, 1)  # what `runner stop` writes before it asks RunPod to stop the pod
    os.kill(pod.supervisor_pid(), signal.SIGTERM)
    state = pod.wait_finished()
    assert state["state"] == "stopped" and "on purpose" in state["message"]
    assert "end state=stopped" in pod.log_text()
    pod.kill_container()
    pod.start_container()
    autoresume_done(pod, "run r1 attempt 1 is stopped: nothing to resume")
    assert [e["event"] for e in pod.events("r1")] == ["started"], "a stop on purpose is no event of the pod's"


def test_after_a_launch_the_start_commands_idle_stop_runs_the_volumes_program_and_reports_it(pod, sink):
    pod.write_config("configs/smoke.yaml", max_steps=3, step_seconds=0)
    pod.commit("short")
    assert pod.launch(RT_RUN_ID="r1", RT_NOTIFY_URLS=sink.url(), RT_STOP_POD="0").returncode == 0
    assert pod.wait_finished()["state"] == "succeeded"
    pod.kill_container()
    stop_api = StopApiServer(POD_API_KEY)
    try:
        started = pod.start_container(
            idle_s=1,
            RUNPOD_REST_URL=stop_api.url,
            RT_IDLE_SSH_PORTS=str(free_port()),
            RT_RP_ENV_FILE=str(pod.rp_env_file),
        )
        assert started.returncode == 0, started.stderr
        wait_for(lambda: len(stop_api.requests) == 1, 30, "the idle pod to stop itself")
    finally:
        stop_api.close()
    events = pod.events("r1")  # idle-stopped: only the launch's program sends it, not the /tmp slice
    assert [e["id"] for e in events] == ["r1:1:started", "r1:1:finished", "r1:1:idle-stopped"]
    assert "no training, SSH session or tunnel" in events[-1]["message"]
    sink.wait_events("idle-stopped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
