"""`runner train --wait-for-capacity`: no GPU for the pod is waited out with backoff, each round saying
what RunPod lists (stock and price), instead of failing (ExitCode.POD); the wait has an end; a `pulumi up` that finds no
GPU is the same "no capacity" (ExitCode.POD), not a Pulumi failure.

Against the fake RunPod API (podBidResume refused as RunPod refuses it), the stub `pulumi` and the
loopback pod."""

from __future__ import annotations

import json

import pytest

from infra.advice import NO_GPU
from runner.exitcodes import ExitCode
from tests.fixtures.recovery_harness import fast_recovery, preempt, recreate_on_up
from tests.fixtures.train_harness import shorten_timeouts, smoke_config, train_env  # noqa: F401

CONFIG = "configs/short.yaml"


@pytest.fixture
def env(train_env, monkeypatch):
    fast_recovery(monkeypatch)
    shorten_timeouts(monkeypatch, capacity_first_pause_s=0.05, capacity_max_pause_s=0.1)
    train_env.write_config(CONFIG, smoke_config(max_steps=6, save_steps=3))
    return train_env


def bid_resumes(env) -> list:
    return [r for r in env.fake.requests if r.operation == "podBidResume"]


def run_record(env, run_id: str) -> dict:
    [path] = env.state_dir.glob(f"**/runs/{run_id}.json")
    return json.loads(path.read_text())


def test_no_gpu_on_the_start_is_waited_out_saying_stock_and_price_each_round(env):
    env.add_pod("EXITED")
    env.fake.inject("podBidResume", "no_capacity", count=2)

    res = env.run("train", "--config", CONFIG, "--run-id", "waits", "--wait-for-capacity", "10m")

    assert res.code == 0, res.err
    rounds = [line for line in res.err.splitlines() if "no GPU for the pod (" in line]
    assert len(rounds) == 2, res.err
    for n, line in enumerate(rounds, 1):
        assert "RunPod lists 1x NVIDIA GeForce RTX 4090 in EU-RO-1: spot stock high, minimum bid $" in line
        assert "on-demand stock high at $" in line and f"round {n})" in line and "of 10m" in line
    assert len(bid_resumes(env)) == 3  # two refused, the third started the pod
    assert "step 6/6" in res.out and "done: " in res.out
    assert run_record(env, "waits")["wait_for_capacity_s"] == 600


def test_the_wait_ends_at_its_limit_with_exit_4_and_nothing_billing(env):
    env.add_pod("EXITED")
    env.fake.inject("podBidResume", "no_capacity", count=1000)

    res = env.run("train", "--config", CONFIG, "--run-id", "gives-up", "--wait-for-capacity", "1s")

    assert res.code == ExitCode.POD, res.err
    assert "error: still no GPU for the pod after waiting " in res.err and "(--wait-for-capacity 1s)" in res.err
    assert "no longer any instances available" in res.err  # RunPod's own words, as the cause
    assert len(bid_resumes(env)) >= 2
    assert env.pod.status == "EXITED"  # nothing billing


def test_without_the_flag_no_gpu_is_exit_4_at_once(env):
    env.add_pod("EXITED")
    env.fake.inject("podBidResume", "no_capacity", count=1000)

    res = env.run("train", "--config", CONFIG, "--run-id", "at-once")

    assert res.code == ExitCode.POD, res.err
    assert len(bid_resumes(env)) == 1 and "trying again" not in res.err


def test_a_replacement_that_finds_no_gpu_is_no_capacity_and_is_waited_out_too(env):
    """After a preemption the host has no GPU (resume refused) and the replacement's `pulumi up` finds
    none either: the recovery tries again within --wait-for-capacity until a replacement goes through."""
    env.write_config(CONFIG, smoke_config(max_steps=30, save_steps=5, step_seconds=0.05))
    env.add_pod("RUNNING")
    old = env.pod_id
    env.fake.inject("podBidResume", "no_capacity", count=1000)  # its host never has a GPU again
    env.stub.update(
        up_lines=[f"    runpod:Pod trainer  error: No spot pod 1x NVIDIA GeForce RTX 4090: RunPod has {NO_GPU} (...)"],
        up_exit_code=1,
    )
    run = env.start("train", "--config", CONFIG, "--run-id", "replaced", "--wait-for-capacity", "10m")
    env.wait_log("saved checkpoint-5")
    preempt(env)
    env.wait_printed("no GPU for the pod (`pulumi up` could not create a pod", timeout=60)
    env.stub.update(up_lines=[], up_exit_code=0)
    recreate_on_up(env)
    res = env.finish(run, timeout=90)

    assert res.code == 0, res.err
    assert "no GPU for the pod (`pulumi up` could not create a pod for stack 'dev': RunPod has" in res.err
    new = env.stub.behaviour()["outputs"]["pod_id"]
    assert new != old and env.fake.pods[old].status == "TERMINATED"
    assert "step 30/30" in res.out
