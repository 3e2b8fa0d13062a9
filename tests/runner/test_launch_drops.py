"""An SSH drop at any moment of the launch never fails a run that started (runner/train/remote_launch.py).

The drops are real: the sshd stand-in kills every session (and what runs in it: the launcher, git),
as a network drop would, at a chosen phase of the launch. Afterwards the runner reconnects, asks the
pod what was launched (RT_ACTION=inspect), and follows that attempt, or launches again if nothing
started. Each test checks that training ran once, to its end, and that stdout is the log of the
attempt that ran, byte for byte.
"""

from __future__ import annotations

import subprocess
import threading

import pytest

from remote.podside.contract import parse_footer
from runner.remote.ssh import SshConnection
from tests.fixtures.recovery_harness import fast_recovery, preempt, record, when_said
from tests.fixtures.train_harness import smoke_config, step_numbers, train_env, wait_for  # noqa: F401

CFG = "configs/drop.yaml"


@pytest.fixture
def env(train_env, monkeypatch):
    fast_recovery(monkeypatch)
    train_env.write_config(CFG, smoke_config(max_steps=15, save_steps=5, step_seconds=0.03))
    train_env.add_pod("RUNNING")
    return train_env


def assert_ran_once_and_printed_exactly(res, env) -> None:
    assert res.code == 0, res.err
    log = env.log_file.read_bytes()
    state = env.state()
    assert state["state"] == "succeeded", state
    offset = state["log_offset"]
    assert res.out.encode() == log[offset : offset + len(res.out.encode())], (res.out[-300:], log[offset:][-300:])
    ran = log[offset:].decode().splitlines()
    assert any(parse_footer(x) for x in res.lines), "the footer was printed"
    assert step_numbers(ran) == list(range(1, 16)) and step_numbers(res.lines) == list(range(1, 16))
    # one training only: every step line of the whole log belongs to the attempt that ran
    assert step_numbers(log.decode().splitlines()) == list(range(1, 16))


def follower_running(env) -> bool:
    """The runner's `tail -F` of the log runs on the pod (its SSH session is up)."""
    return subprocess.run(["pgrep", "-f", f"tail .*-F -- {env.log_file}"], capture_output=True).returncode == 0


def drop_when_said(monkeypatch, env, predicate) -> list[str]:
    """Drop every SSH session right after the runner prints a message matching predicate (once)."""
    return when_said(monkeypatch, predicate, env.sshd.drop_connections)


def test_a_drop_before_the_script_is_sent_launches_again(env, monkeypatch):
    real, calls = SshConnection.run_script, []

    def run_script(self, *a, **kw):
        calls.append(1)
        if len(calls) == 1:
            env.sshd.drop_connections()  # the link is gone before a byte of the script went out
        return real(self, *a, **kw)

    monkeypatch.setattr(SshConnection, "run_script", run_script)
    res = env.run("train", "--config", CFG, "--run-id", "d-before")

    assert "SSH link lost during the launch" in res.err, res.err
    assert "nothing was started by the interrupted launch; launching again" in res.err
    assert_ran_once_and_printed_exactly(res, env)
    assert env.state()["attempt"] == 1


def test_a_drop_while_the_launcher_clones_launches_again_or_follows_what_started(env, monkeypatch):
    fired = drop_when_said(monkeypatch, env, lambda m: m.startswith("launcher: cloning"))
    res = env.run("train", "--config", CFG, "--run-id", "d-clone")

    assert fired and "SSH link lost during the launch" in res.err, res.err
    assert_ran_once_and_printed_exactly(res, env)


def test_a_drop_while_the_venv_is_built_is_followed_through(env):
    env.venv_hold.touch()  # the supervisor's venv setup waits
    run = env.start("train", "--config", CFG, "--run-id", "d-venv")
    env.wait_log("venv: creating")
    wait_for(lambda: follower_running(env), 30, "the runner's log follower on the pod")
    env.sshd.drop_connections()
    env.wait_printed("reconnected")
    env.venv_hold.unlink()
    res = env.finish(run)

    assert_ran_once_and_printed_exactly(res, env)


def test_a_drop_right_after_the_early_tmux_start_never_runs_twice(env):
    # The session starts early (remote/podside/handoff.py), before the clone: a drop then kills the
    # launcher mid-way, its waiting supervisor gives up, and the runner launches again (or, if the
    # launcher got as far as the plan, follows what it started). A drop after the attempt started and
    # before RT_RESULT was read: the next test.
    run = env.start("train", "--config", CFG, "--run-id", "d-early")
    dropped = threading.Event()

    def watch() -> None:  # drop the moment the training session exists
        wait_for(env.session_alive, 30, "the tmux session", interval=0.002)
        env.sshd.drop_connections()
        dropped.set()

    threading.Thread(target=watch, daemon=True).start()
    res = env.finish(run)

    assert dropped.is_set()
    assert "SSH link lost during the launch" in res.err, res.err
    assert_ran_once_and_printed_exactly(res, env)


def test_a_drop_before_rt_result_was_read_follows_the_started_attempt(env, monkeypatch):
    real, calls = SshConnection.run_script, []

    def run_script(self, *a, **kw):
        result = real(self, *a, **kw)
        calls.append(1)
        if len(calls) == 1:  # the pod launched and answered; the answer is lost
            env.sshd.drop_connections()
            from runner.errors import SshDisconnected

            raise SshDisconnected("lost the SSH connection while reading the launcher's answer")
        return result

    monkeypatch.setattr(SshConnection, "run_script", run_script)
    res = env.run("train", "--config", CFG, "--run-id", "d-result")

    assert "the launch went through before the link dropped: following run d-result attempt 1" in res.err, res.err
    assert_ran_once_and_printed_exactly(res, env)
    assert env.state()["attempt"] == 1 and len(env.headers()) == 1


def test_a_preemption_during_the_launch_is_recovered_like_one_during_training(env, monkeypatch):
    # the container goes, SSH with it, the API says outbid
    fired = when_said(monkeypatch, lambda m: m.startswith("launcher: cloning"), lambda: preempt(env))
    res = env.run("train", "--config", CFG, "--run-id", "d-preempt")

    assert fired and "was preempted (outbid" in res.err and "recovering automatically" in res.err, res.err
    assert len([r for r in env.fake.billable_calls() if r.operation == "podBidResume"]) == 1
    assert_ran_once_and_printed_exactly(res, env)
    rec = record(env, "d-preempt")
    assert rec["status"] == "succeeded" and rec["preemptions"] == 1 and rec["recoveries"] == 1
