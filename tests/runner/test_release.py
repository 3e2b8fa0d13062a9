"""Nothing left billing: a pod a command started is stopped again when it fails before training
(or the copy) is launched: a start timeout, SSH refused, the launcher refusing, a failed recovery.

Each test reads the fake RunPod API's call log: the billable resume, then the runner's stop
with the account key, and the pod EXITED at the end.
"""

from __future__ import annotations

import subprocess

from runner import cli
from runner.exitcodes import ExitCode
from standins.ports import free_port
from tests.fixtures.recovery_harness import preempt
from tests.fixtures.train_harness import smoke_config, train_env, wait_for  # noqa: F401
from tests.runner.test_sync import FILES, make_tree, pod_env, pod_sshd  # noqa: F401

CONFIG = "configs/smoke.yaml"


def runner_stops(fake) -> list:
    return [r for r in fake.requests if r.action == "stop" and r.auth == "account" and r.status == 200]


def assert_started_then_stopped(fake, pod) -> None:
    billable = fake.billable_calls()
    stops = runner_stops(fake)
    assert len(billable) == 1, billable
    assert len(stops) == 1 and stops[0].time > billable[0].time, fake.requests
    assert pod.status == "EXITED"


# ---------------------------------------------------------------- train
def test_train_start_timeout_stops_the_pod_it_resumed(train_env, monkeypatch):
    env = train_env
    env.add_pod("EXITED")
    env.fake.set_ssh_target("127.0.0.1", [free_port()])  # RUNNING, but sshd never answers
    monkeypatch.setenv("POD_START_TIMEOUT", "2")
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.POD, res.err
    assert "was not reachable over SSH within 2.0s" in res.err
    assert "so it stopped it again: nothing is left billing" in res.err
    assert "it keeps starting" not in res.err  # the old advice would be wrong now
    assert_started_then_stopped(env.fake, env.pod)


def test_train_ssh_refused_stops_the_pod_it_resumed(train_env, monkeypatch, tmp_path):
    env = train_env
    env.add_pod("EXITED")
    stranger = tmp_path / "not_authorized"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    monkeypatch.setenv("SSH_KEY_PATH", str(stranger))  # a valid key the pod does not know
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.SSH, res.err
    assert "rejected the key" in res.err
    assert f"nothing was started, so pod {env.pod_id} stopped by the runner" in res.err
    assert_started_then_stopped(env.fake, env.pod)


def test_train_launcher_refusal_stops_the_pod_it_resumed(train_env, monkeypatch):
    env = train_env
    env.add_pod("EXITED")
    # Not reachable from here either (a warning), so only the pod finds out, when it clones.
    monkeypatch.setenv("REPO_URL", str(env.root / "no-such-repo"))
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.USAGE, res.err
    assert "warning: could not check" in res.err
    assert "did not start training" in res.err and "git clone" in res.err
    assert f"nothing was started, so pod {env.pod_id} stopped by the runner" in res.err
    assert_started_then_stopped(env.fake, env.pod)


def test_train_pod_already_running_is_left_running_when_the_start_fails(train_env, monkeypatch):
    env = train_env
    env.fake.set_ssh_target("127.0.0.1", [free_port()])
    env.add_pod("RUNNING")
    monkeypatch.setenv("POD_START_TIMEOUT", "1")
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.POD, res.err
    assert "runner stop" in res.err  # not ours to stop: says how
    assert env.fake.billable_calls() == [] and runner_stops(env.fake) == []
    assert env.pod.status == "RUNNING"


def test_recovery_whose_resume_times_out_stops_the_pod_again(train_env, monkeypatch):
    env = train_env
    env.add_pod("RUNNING")
    env.write_config("configs/long.yaml", smoke_config(max_steps=400, step_seconds=0.05))
    monkeypatch.setenv("POD_START_TIMEOUT", "2")
    run = env.start("train", "--config", "configs/long.yaml", "--run-id", "rec1")
    env.wait_log("step 3/")
    env.fake.set_ssh_target("127.0.0.1", [free_port()])  # the resumed pod will not answer
    preempt(env)
    res = env.finish(run, timeout=60)
    assert res.code == ExitCode.POD, res.err
    assert "recovery stopped" in res.err and "so it stopped it again" in res.err
    assert_started_then_stopped(env.fake, env.pod)


# ---------------------------------------------------------------- sync
def test_sync_start_timeout_stops_the_pod_it_started(pod_env, capfd, monkeypatch):
    pod_env.add_pod("EXITED")
    make_tree(pod_env.data_dir, FILES)
    pod_env.fake.set_ssh_target("127.0.0.1", [free_port()])
    monkeypatch.setenv("POD_START_TIMEOUT", "2")
    assert cli.main(["sync"]) == ExitCode.POD
    err = capfd.readouterr().err
    assert "was not reachable over SSH" in err and "nothing is left billing" in err
    assert_started_then_stopped(pod_env.fake, pod_env.pod)


def test_sync_keep_running_does_not_keep_a_pod_it_could_not_use(pod_env, capfd, monkeypatch):
    pod_env.add_pod("EXITED")
    make_tree(pod_env.data_dir, FILES)
    pod_env.fake.set_ssh_target("127.0.0.1", [free_port()])
    monkeypatch.setenv("POD_START_TIMEOUT", "2")
    assert cli.main(["sync", "--keep-running"]) == ExitCode.POD
    err = capfd.readouterr().err
    # Said once, in the error: the start that failed stopped the pod it had started (--keep-running or not).
    assert f"This command had started pod {pod_env.pod_id}, so it stopped it again: nothing is left billing" in err
    assert err.count("stopped it again") == 1
    assert_started_then_stopped(pod_env.fake, pod_env.pod)


# ---------------------------------------------------------------- Ctrl-C while the pod starts
def test_ctrl_c_while_waiting_for_the_start_stops_the_pod_again(fake_runpod, tmp_path):
    import pytest

    from tests.runner.test_pod import outputs_for, stack_pod

    fake_runpod.boot_seconds = 60  # it would take a minute to come up
    pod = fake_runpod.add_pod(status="EXITED")
    said: list[str] = []

    def progress(message: str) -> None:
        said.append(message)
        if message.startswith("waiting for pod"):  # the resume was sent; now the user gives up
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stack_pod(fake_runpod.client(), outputs_for(pod), tmp_path, deadline_s=30).start_for_command(say=progress)
    assert any("so it stopped it again: nothing is left billing" in m for m in said), said
    assert_started_then_stopped(fake_runpod, fake_runpod.pods[pod.id])
