"""Finding 10: two `runner train` on one stack both ran recovery (two `pulumi up --replace`; the second
could replace the pod the first had just relaunched on). The per-stack lock (runner/stacklock.py) makes
the second a follower: it prints the log and never starts, stops or recreates anything."""

from __future__ import annotations

import os
import subprocess
import sys

from runner.errors import SshConnectError
from runner.pod.link import PodLink
from runner.settings import load_settings
from runner.stacklock import StackLock
from tests.fixtures.recovery_harness import fast_recovery, preempt, recreate_on_up
from tests.fixtures.train_harness import BackgroundRun, smoke_config, train_env  # noqa: F401

LONG = "configs/long.yaml"


def test_the_lock_has_one_leader_and_says_who_it_is(tmp_path):
    lock = StackLock(tmp_path / "dev" / "lock")
    lease = lock.try_lead("train")
    assert lease is not None
    assert StackLock(lock.path).try_lead("watch") is None  # a second holder, even in this process
    holder = lock.holder()
    assert holder is not None and (holder.pid, holder.command) == (os.getpid(), "train")
    lease.release()
    assert lock.holder() is None
    later = lock.wait_lead("watch", timeout_s=5)
    assert later is not None and lock.holder().command == "watch"
    later.release()


def test_a_leader_that_dies_leaves_the_lock(tmp_path):
    path = tmp_path / "dev" / "lock"
    code = f"from runner.stacklock import StackLock; import os; StackLock(__import__('pathlib').Path({str(path)!r})).try_lead('train'); os._exit(0)"
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    assert StackLock(path).try_lead("train") is not None


def test_a_second_runner_train_follows_and_only_the_leader_recovers(train_env, monkeypatch):  # noqa: F811
    env = train_env
    fast_recovery(monkeypatch)
    env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.05))
    env.add_pod("RUNNING")
    recreate_on_up(env)
    env.fake.inject("podBidResume", "not_enough_gpus_on_host", count=5)  # recovery needs `pulumi up --replace`
    leader = env.start("train", "--config", LONG, "--run-id", "two")
    env.wait_log("saved checkpoint-5")
    second = BackgroundRun(["train", "--config", LONG, "--run-id", "two"])
    env.wait_printed("leads stack dev")
    preempt(env)
    assert second.wait(60) == 0
    res = env.finish(leader, timeout=90)
    assert res.code == 0, res.err
    assert len(env.stub.up_calls()) == 1, "one recovery, by the leader"
    resumes = [r for r in env.fake.billable_calls() if r.operation == "podBidResume"]
    assert len(resumes) == 1
    assert "it alone starts, recovers and stops the pod" in res.err
    assert StackLock.of(load_settings().paths).holder() is None  # released at the end


def test_a_follower_whose_first_connection_drops_attaches_again(train_env, monkeypatch):  # noqa: F811
    """The second `runner train` connected just as the pod was preempted: its first connection reset. It
    attaches again like a follow that dropped (it exited 106 with the handshake error before)."""
    env = train_env
    env.write_config(LONG, smoke_config(max_steps=20, save_steps=5, step_seconds=0.05))
    env.add_pod("RUNNING")
    leader = env.start("train", "--config", LONG, "--run-id", "drop")
    env.wait_log("saved checkpoint-5")  # the leader follows on its connection: the next connect is the follower's
    real, dropped = PodLink.connect, []

    def connect(self, **kw):
        if not dropped:
            dropped.append(self.pod_id)
            raise SshConnectError("SSH handshake with the pod failed (Connection reset by peer)")
        return real(self, **kw)

    monkeypatch.setattr(PodLink, "connect", connect)
    second = BackgroundRun(["train", "--config", LONG, "--run-id", "drop"])
    assert second.wait(60) == 0
    assert dropped == [env.pod_id]
    res = env.finish(leader, timeout=60)
    assert res.code == 0, res.err
