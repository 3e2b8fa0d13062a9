"""`runner watch`: a detached run recovered with nobody attached, on the loopback pod (the real sshd, the fake
RunPod API, the stub pulumi), and never a recovery on a flap."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from remote.podside.sshsessions import ssh_connections, tcp_sockets
from runner.watcher import background
from tests.fixtures.recovery_harness import attempts_in_log, fast_recovery, preempt, record, steps_of
from tests.fixtures.train_harness import smoke_config, train_env, wait_for  # noqa: F401

LONG = "configs/long.yaml"


@pytest.fixture
def env(train_env, monkeypatch):
    fast_recovery(monkeypatch)
    monkeypatch.delenv(background.OPT_OUT, raising=False)  # these tests are about the watcher
    monkeypatch.setenv("WATCH_POLL_SECONDS", "0.3")
    monkeypatch.setenv("WATCH_CONFIRM_SECONDS", "0.5")
    train_env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.05))
    yield train_env
    background.stop(train_env_paths(train_env))


def train_env_paths(env):
    from runner.paths import StatePaths

    return StatePaths(env.state_dir, "dev")


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def resumes(env) -> list:
    return [r for r in env.fake.billable_calls() if r.operation == "podBidResume"]


def test_watch_once_by_hand_recovers_a_detached_run_from_its_newest_checkpoint(env, monkeypatch):
    monkeypatch.setenv(background.OPT_OUT, "0")  # no background watcher: the passes are made by hand
    env.add_pod("RUNNING")
    res = env.run("train", "--config", LONG, "--run-id", "w1", "--detach")
    assert res.code == 0, res.err
    assert "no background watcher (RUNNER_WATCH=0)" in res.err
    env.wait_log("saved checkpoint-10")
    preempt(env)

    first = env.run("watch", "--once")  # one answer says EXITED: not yet an interruption
    assert first.code == 0 and "not up: waiting for a second answer" in first.err, first.err
    assert resumes(env) == []
    # Passes as cron makes them: waiting, until a second answer WATCH_CONFIRM_SECONDS after the first.
    passes = [env.run("watch", "--once").err]
    while "waiting for a second answer" in passes[-1]:
        passes.append(env.run("watch", "--once").err)
    assert "recovered and relaunched (run w1)" in passes[-1], passes
    assert len(resumes(env)) == 1
    # The pass kept no SSH session open behind it (one would hold off the pod's idle stop).
    wait_for(lambda: ssh_connections(set(env.sshd.ports), tcp_sockets()) == 0, 10, "the pass's links to close")

    env.wait_state("succeeded", timeout=60)
    wait_for(lambda: env.pod.status == "EXITED", 30, "the pod to stop itself")
    header, *lines = attempts_in_log(env)[1]
    assert "attempt=2 " in header and "checkpoint-10" in header, header  # the newest complete checkpoint
    assert steps_of(lines) == list(range(11, 41))
    rec = record(env, "w1")
    assert rec["recoveries"] == 1 and rec["attempts"][-1]["recovery"] == "resumed"
    assert rec["max_recoveries"] == 3  # the run's limits, kept with it for the watcher
    passes = [env.run("watch", "--once").err]  # the pod stopped itself at the end: not a preemption
    while "waiting for a second answer" in passes[-1]:
        passes.append(env.run("watch", "--once").err)
    assert "left alone" in passes[-1], passes
    assert "nothing to watch" in env.run("watch", "--once").err
    assert len(resumes(env)) == 1


def test_a_detached_run_is_recovered_by_the_background_watcher_with_no_runner_left(env):
    env.add_pod("RUNNING")
    res = env.run("train", "--config", LONG, "--run-id", "w2", "--detach")
    assert res.code == 0, res.err
    assert "a background watcher (pid " in res.err and "runner watch --stop" in res.err
    pid = background.running_pid(train_env_paths(env))
    assert pid and pid > 0
    env.wait_log("saved checkpoint-10")
    preempt(env)

    env.wait_state("succeeded", timeout=90)  # recovered, relaunched and finished with nobody attached
    assert len(resumes(env)) == 1
    header = attempts_in_log(env)[1][0]
    assert "attempt=2 " in header and "checkpoint-10" in header
    wait_for(lambda: background.running_pid(train_env_paths(env)) is None, 60, "the watcher to end by itself")
    log = (env.state_dir / "dev" / "watch.log").read_text()
    assert "recovered and relaunched (run w2)" in log and env.fake.api_key not in log


def test_watch_stop_stops_the_background_watcher(env):
    env.add_pod("RUNNING")
    assert env.run("train", "--config", LONG, "--run-id", "w3", "--detach").code == 0
    pid = background.running_pid(train_env_paths(env))
    assert pid and pid > 0
    res = env.run("watch", "--stop")
    assert res.code == 0 and f"pid {pid}" in res.out
    assert background.running_pid(train_env_paths(env)) is None
    wait_for(lambda: not alive(pid), 10, f"watcher {pid} to exit")


def test_a_background_watcher_ends_when_this_machines_records_of_the_stack_are_deleted(env):
    """Its lock file goes with them: it would no longer keep a second watcher out (and a test's or the
    bench's world, torn down, leaves no watcher asking an API that is gone)."""
    env.add_pod("RUNNING")
    assert env.run("train", "--config", LONG, "--run-id", "w4", "--detach").code == 0
    pid = background.running_pid(train_env_paths(env))
    assert pid and pid > 0
    lock = env.state_dir / "dev" / "watch.lock"
    assert lock.exists()
    lock.unlink()  # as `rm -rf ~/.runpod-trainer/dev` does to it
    wait_for(lambda: not alive(pid), 30, f"watcher {pid} to end by itself")


def test_no_recovery_on_a_flap_of_the_api_and_ssh(env, monkeypatch):
    """A healthy run, followed by an attached runner while a watcher loops beside it; RunPod's API answers
    500s, 429s and timeouts and the SSH links drop again and again for most of the run: no recovery."""
    monkeypatch.setenv(background.OPT_OUT, "0")
    env.write_config(LONG, smoke_config(max_steps=60, save_steps=5, step_seconds=0.1))
    env.add_pod("RUNNING")
    env.fake.hang_seconds = 0.3
    run = env.start("train", "--config", LONG, "--run-id", "flap")
    env.wait_log("saved checkpoint-5")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "runner", "watch", "--poll", "0.2", "--confirm", "0.2"],
        cwd=env.project,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stop = threading.Event()

    def flap() -> None:
        kinds = ["transient", "rate_limit", "timeout", "unavailable", "drop_before"]
        i = 0
        while not stop.wait(0.25):
            env.fake.inject(f"rest:GET /v2/pods/{env.pod_id}", kinds[i % len(kinds)], count=2)
            env.fake.inject("pod", kinds[(i + 1) % len(kinds)], count=1)  # GraphQL's history read
            if i % 6 == 0:
                env.sshd.drop_connections()
            i += 1

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    try:
        res = env.finish(run, timeout=180)
    finally:
        stop.set()
        flapper.join(5)
        watcher.terminate()
        watched = watcher.communicate(timeout=30)[0]
    assert res.code == 0, res.err
    assert "watching stack dev" in watched and "recovered" not in watched, watched
    assert resumes(env) == [] and env.stub.up_calls() == []  # nothing resumed, nothing replaced
    assert [r for r in env.fake.requests if r.action == "start"] == []
    rec = record(env, "flap")
    assert rec["recoveries"] == 0 and rec["preemptions"] == 0 and len(rec["attempts"]) == 1
    assert any(r.injected for r in env.fake.requests)  # the flap did reach the runner


def test_one_preemption_is_recovered_once_with_an_attached_runner_and_a_watcher(env, monkeypatch, tmp_path):
    """Two parties see the same preemption: the attached `runner train` and a watcher loop. The machine's
    recovery claim (runner/pod/claim.py) lets one of them bring the pod back; the other then finds it
    running again and stands back: one resume, one attempt 2. The test holds the claim until both wait
    for it, so the race is there every time."""
    from runner.pod.claim import claim_recovery

    monkeypatch.setenv(background.OPT_OUT, "0")
    env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.1))
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "two")
    env.wait_log("saved checkpoint-5")
    log = tmp_path / "watch.out"
    with open(log, "w") as out:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "runner", "watch", "--poll", "0.2", "--confirm", "0.3"],
            cwd=env.project,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    waiting = "is recovering the pod; waiting for it"
    try:
        wait_for(lambda: "training runs (run two)" in log.read_text(), 60, "the watcher to see the run")
        env.wait_log("saved checkpoint-10")
        with claim_recovery(train_env_paths(env)):  # a third party holds it: both must queue behind it
            preempt(env)
            env.wait_printed(waiting, timeout=60)
            wait_for(lambda: waiting in log.read_text(), 60, "the watcher to wait for the claim")
        res = env.finish(run, timeout=180)
    finally:
        watcher.terminate()
        watcher.wait(30)
    watched = log.read_text()
    assert res.code == 0, res.err
    assert len(resumes(env)) == 1 and env.stub.up_calls() == []  # one party resumed the pod
    assert len(attempts_in_log(env)) == 2  # one relaunch
    # The one that got the claim second found the pod running again and stood back.
    stood_back = [
        who
        for who, text in (("runner", res.err), ("watcher", watched))
        if "runs again (another runner or watcher recovered it)" in text
    ]
    assert len(stood_back) == 1, (res.err[-2000:], watched[-2000:])
