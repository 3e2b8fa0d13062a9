"""The stall guard (remote/podside/stallguard.py) in the supervisor: a hung trainer is stopped and
reported, a slow one is not. Piece by piece with a fake clock, then for real on the stand-in pod with
the smoke trainer's hang and its long evaluation, a webhook on 127.0.0.1 and a REST stop stand-in."""

from __future__ import annotations

import signal
import sys
import time
import uuid

import pytest

from remote.podside.children import Children
from remote.podside.stallguard import StallConfig, StallGuard
from tests.fixtures.pod_harness import POD_API_KEY, PodSandbox, StopApiServer, WebhookSink, wait_for, write_executable


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_output_or_a_new_checkpoint_keeps_training_alive(tmp_path):
    log, out = tmp_path / "current.log", tmp_path / "out"
    log.write_text("")
    out.mkdir()
    clock = Clock()
    guard = StallGuard(StallConfig(minutes=1, gpu_window_minutes=0), str(log), str(out), {}, clock=clock)
    assert guard.poll_s == 6.0
    clock.now += 50
    with log.open("a") as fh:
        fh.write("\r 10%|#  | 1/10")  # a progress bar redrawn, no newline: output all the same
    assert guard.check() is None
    clock.now += 50
    (out / "checkpoint-5").mkdir()  # a save in progress is progress
    assert guard.check() is None
    clock.now += 59
    assert guard.check() is None
    clock.now += 1
    assert guard.check() == "no output and no new checkpoint for 1 min"
    guard.rearm()
    assert guard.check() is None


def test_a_gpu_under_the_threshold_for_the_window_and_no_reading_never_counts_as_idle(tmp_path):
    clock = Clock()
    readings = iter([0.0, 2.0, None, 1.0, 4.0, 3.0, 50.0, 1.0])
    guard = StallGuard(
        StallConfig(minutes=0, gpu_util_below=5, gpu_window_minutes=2),
        str(tmp_path / "log"),
        str(tmp_path),
        {},
        clock=clock,
        gpu=lambda: next(readings),
    )
    verdicts = []
    for _ in range(8):
        verdicts.append(guard.check())
        clock.now += 60
    # low from t=100 (0, 2), no reading at t=220 restarts it; low again from t=280 (1, 4, 3): a stall at
    # t=400; 50 % at t=460 ends it.
    assert verdicts == [None] * 5 + ["GPU utilization under 5% for 2 min", None, None]


def test_without_nvidia_smi_the_gpu_check_is_skipped_and_zero_turns_a_check_off(tmp_path):
    guard = StallGuard(StallConfig(minutes=0, gpu_window_minutes=1), str(tmp_path / "log"), str(tmp_path), {"PATH": ""})
    assert guard.gpu is None and guard.check() is None
    assert StallConfig(minutes=0, gpu_window_minutes=0).off
    assert StallConfig.from_plan(None) == StallConfig(45.0, 5.0, 30.0, "stop")
    assert StallConfig.from_plan({"minutes": 2, "action": "bogus"}) == StallConfig(2.0, 5.0, 30.0, "stop")


def test_a_child_that_ignores_sigterm_is_killed_after_its_grace(tmp_path):
    children = Children(str(tmp_path / "log"))
    ready = tmp_path / "ready"
    children.start(
        [
            sys.executable,
            "-c",
            f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); open({str(ready)!r}, 'w').close(); "
            "time.sleep(600)",
        ]
    )
    wait_for(ready.exists, 10, "the child to ignore SIGTERM")
    started = time.monotonic()
    assert children.end(grace_s=0.5) == 128 + signal.SIGKILL
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- on the stand-in pod


@pytest.fixture
def stop_api():
    server = StopApiServer(POD_API_KEY)
    yield server
    server.close()


def test_a_hung_trainer_is_stopped_reported_and_the_pod_stopped(pod, sink, stop_api):
    pod.write_config("configs/smoke.yaml", max_steps=1000, save_steps=5, step_seconds=0.05, hang_at_step=10)
    pod.commit("hangs after checkpoint-10")
    run = pod.launch(RT_RUN_ID="r1", RT_NOTIFY_URLS=sink.url(), RT_STALL_MINUTES="0.05", RUNPOD_REST_URL=stop_api.url)
    assert run.returncode == 0, run.stderr
    state = pod.wait_finished(timeout=60)
    out = pod.repo_dir / "checkpoints" / "smoke"
    assert state["state"] == "stalled" and state["last_checkpoint"] == str(out / "checkpoint-10")
    assert state["exit_code"] == 128 + signal.SIGTERM and "stalled: no output" in state["message"]
    assert (out / "checkpoint-10" / "trainer_state.json").exists(), "the newest complete checkpoint stays"
    assert not pod.processes_running(str(pod.repo_dir / "scripts" / "train.py"))
    log = pod.log_text()
    assert "stall: no output and no new checkpoint for 0.05 min; stopping training" in log
    assert "end state=stalled" in log
    assert state["stop_requested"] is True and [r["authorized"] for r in stop_api.requests] == [True]
    events = [e for e in pod.events("r1") if e["event"] == "stalled"]
    assert [e["id"] for e in events] == ["r1:1:stalled"] and events[0]["step"] == 10
    received = sink.wait_events("started", "stalled")
    assert sorted(e["id"] for e in received) == ["r1:1:stalled", "r1:1:started"]


def test_a_slow_trainer_with_a_long_evaluation_is_not_stalled(pod, sink):
    # 6 s without a new line: steps of 1.5 s, then a 9 s "evaluation" that only redraws a progress line.
    pod.write_config(
        "configs/smoke.yaml",
        max_steps=4,
        save_steps=100,
        step_seconds=1.5,
        eval_at_step=2,
        eval_seconds=9,
        eval_tick_seconds=1,
    )
    pod.commit("slow but alive")
    run = pod.launch(RT_RUN_ID="r1", RT_NOTIFY_URLS=sink.url(), RT_STALL_MINUTES="0.1", RT_STOP_POD="0")
    assert run.returncode == 0, run.stderr
    state = pod.wait_finished(timeout=90)
    assert state["state"] == "succeeded", pod.log_text()[-1500:]
    assert "eval done" in pod.log_text() and "stall:" not in pod.log_text()
    assert [e["event"] for e in pod.events("r1")] == ["started", "finished"]
    sink.wait_events("finished")


def test_an_idle_gpu_is_a_stall_and_action_notify_only_reports_it(pod, sink):
    """nvidia-smi says both GPUs idle while training prints steps: reported (action notify), training goes on."""
    write_executable(pod.bin / "nvidia-smi", "#!/bin/sh\nprintf '0\\n3\\n'\n")
    pod.write_config("configs/smoke.yaml", max_steps=30, save_steps=100, step_seconds=0.2)
    pod.commit("a GPU that does nothing")
    run = pod.launch(
        RT_RUN_ID="r1",
        RT_NOTIFY_URLS=sink.url(),
        RT_STALL_MINUTES="0",
        RT_STALL_GPU_WINDOW_MINUTES="0.03",
        RT_STALL_ACTION="notify",
        RT_STOP_POD="0",
    )
    assert run.returncode == 0, run.stderr
    state = pod.wait_finished(timeout=90)
    assert state["state"] == "succeeded"
    assert "stall: GPU utilization under 5% for 0.03 min; reported only" in pod.log_text()
    stalled = [e["id"] for e in pod.events("r1") if e["event"] == "stalled"]
    assert len(stalled) >= 2, "reported again after each window"
    assert stalled == ["r1:1:stalled"] + [f"r1:1:stalled:{n}" for n in range(2, len(stalled) + 1)]
    sink.wait_events("stalled", "finished")


def test_an_idle_gpu_with_action_stop_ends_the_run(pod, sink):
    write_executable(pod.bin / "nvidia-smi", "#!/bin/sh\necho 1\n")
    pod.write_config("configs/smoke.yaml", max_steps=100000, save_steps=10, step_seconds=0.05)
    pod.commit("endless, on an idle GPU")
    run = pod.launch(RT_RUN_ID="r1", RT_STALL_MINUTES="0", RT_STALL_GPU_WINDOW_MINUTES="0.03", RT_STOP_POD="0")
    assert run.returncode == 0, run.stderr
    state = pod.wait_finished(timeout=60)
    assert state["state"] == "stalled" and "GPU utilization under 5%" in state["message"]


def test_a_dead_or_slow_webhook_delays_neither_the_launch_nor_training_nor_the_stop(pod, stop_api):
    slow = WebhookSink(held=True)  # answers nothing until released
    dead = f"http://127.0.0.1:{_closed_port()}/hook/s3cr3t-dead"
    try:
        pod.write_config("configs/smoke.yaml", max_steps=5, step_seconds=0)
        pod.commit("short")
        run = pod.launch(RT_RUN_ID="r1", RT_NOTIFY_URLS=f"{dead},{slow.url()}", RUNPOD_REST_URL=stop_api.url)
        assert run.returncode == 0, run.stderr  # returned while the webhook holds `started`
        wait_for(lambda: len(stop_api.requests) == 1, 30, "the pod's stop request")
        assert slow.requests == [], "the stop went out while the webhook still held the notifications"
        assert pod.state()["state"] == "succeeded"
        slow.release.set()
        slow.wait_events("started", "finished")
        assert sorted(e["id"] for e in slow.events()) == ["r1:1:finished", "r1:1:started"]
        notify_log = pod.workspace / "logs" / "notify.log"
        wait_for(lambda: notify_log.exists() and notify_log.read_text().count("failed") == 2, 30, "the failures")
        assert "s3cr3t" not in notify_log.read_text() and "http://127.0.0.1/***" in notify_log.read_text()
    finally:
        slow.close()


def test_the_webhook_urls_stay_in_notify_json_and_out_of_every_environment(pod, sink):
    pod.write_config("configs/smoke.yaml", max_steps=200, step_seconds=0.05)
    pod.commit("long enough to look")
    bad = pod.launch(RT_RUN_ID="r0", RT_NOTIFY_URLS="https://ok.example/x, not-a-url/s3cr3t-t0ken")
    assert bad.returncode == 2 and "s3cr3t" not in bad.stderr and "URL 2 of 2" in bad.stderr
    assert pod.state() is None, "refused before anything was launched"

    run = pod.launch(RT_RUN_ID="r1", RT_NOTIFY_URLS=sink.url(), RT_STOP_POD="0")
    assert run.returncode == 0, run.stderr
    state = pod.wait_state("running")
    secret = b"s3cr3t-t0ken"
    notify_json = pod.workspace / ".runner" / "notify.json"
    assert notify_json.stat().st_mode & 0o777 == 0o600 and secret in notify_json.read_bytes()
    assert secret not in open(f"/proc/{state['train_pid']}/environ", "rb").read()
    assert secret not in open(f"/proc/{state['supervisor_pid']}/environ", "rb").read()
    assert secret not in pod.tmux("show-environment", "-g").stdout.encode()
    for path in pod.workspace.rglob("*"):
        if path.is_file() and path != notify_json:
            assert secret not in path.read_bytes(), path
    for pid in pod.processes_running(""):
        try:
            assert secret not in open(f"/proc/{pid}/cmdline", "rb").read(), pid
        except OSError:
            pass
    pod.wait_finished(timeout=60)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
