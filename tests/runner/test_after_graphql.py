"""The runner with RunPod's GraphQL retired (the fake answers 410 Gone on /graphql): `runner train` on a
stopped spot pod says spot is gone and recovers or exits 4 by the stack's spot_fallback (never exit 5,
"API error"); `runner status` and `runner stop` work on REST v2 alone."""

from __future__ import annotations

import json

import pytest

from runner.exitcodes import ExitCode
from runner.paths import StatePaths
from runner.pod.pod import StackPod
from runner.pod.stack_outputs import StackOutputs
from runner.pod.stops import StopLog
from standins.pulumi_cli import POD_URN
from tests.fixtures.recovery_harness import (
    assert_log_printed_exactly,
    attempts_in_log,
    fast_recovery,
    kill_container,
    newest_complete,
    preempt,
    recreate_on_up,
)
from tests.fixtures.train_harness import assert_printed_is_the_log, smoke_config, train_env, wait_for  # noqa: F401

CONFIG = "configs/smoke.yaml"


def record(env) -> dict:
    stack_dir = env.state_dir / "dev"
    run_id = (stack_dir / "last_run").read_text().strip()
    return json.loads((stack_dir / "runs" / f"{run_id}.json").read_text())


def graphql_calls(env) -> list:
    return [r for r in env.fake.requests if r.path == "/graphql"]


def test_train_on_a_stopped_spot_pod_without_fallback_exits_4_and_says_what_to_set(train_env):
    env = train_env
    env.add_pod("EXITED")  # a spot pod; spot_fallback: fail
    env.fake.retire_graphql()

    res = env.run("train", "--config", CONFIG)

    assert res.code == ExitCode.POD, res.err  # the pod's problem, not "API error" (5)
    assert "retired its GraphQL API" in res.err and "cannot be resumed as a spot pod" in res.err
    assert "pulumi config set spotFallback on-demand" in res.err and "maxOnDemandPricePerGpu" in res.err
    assert "RunPod API error" not in res.err
    assert env.pod.status == "EXITED" and env.pod.start_count == 1  # nothing was started
    assert env.stub.up_calls() == []  # policy "fail": no replacement
    assert {r.status for r in graphql_calls(env)} == {410}
    assert env.fake.api_key not in res.err + res.out


def test_train_on_a_stopped_spot_pod_with_fallback_replaces_it_on_demand(train_env, monkeypatch):
    env = train_env
    fast_recovery(monkeypatch)
    env.add_pod("EXITED", outputs={"spot_fallback": "on-demand", "max_on_demand_price": 0.8})
    old = env.pod_id
    recreate_on_up(env, interruptible=False)
    env.fake.retire_graphql()

    res = env.run("train", "--config", CONFIG)

    assert res.code == 0, res.err
    assert "retired its GraphQL API" in res.err and "replacing pod" in res.err
    assert env.stub.replaced() == [POD_URN]  # through the stack, delete-before-replace
    assert env.fake.pods[old].status == "TERMINATED"
    new = env.fake.pods[env.stub.behaviour()["outputs"]["pod_id"]]
    assert new.interruptible is False and new.id != old
    assert_printed_is_the_log(res, env)
    assert [a["market"] for a in record(env)["attempts"]] == ["on-demand"]
    wait_for(lambda: new.status == "EXITED", 15, "the on-demand pod to stop itself")


def test_status_and_stop_work_without_graphql(train_env):
    env = train_env
    env.add_pod("RUNNING")
    env.fake.retire_graphql()

    res = env.run("status", "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["pod_id"] == env.pod_id and report["pod"]["status"] == "RUNNING"

    res = env.run("stop")
    assert res.code == 0, res.err
    assert env.pod.status == "EXITED"
    res = env.run("status", "--json")
    assert res.code == 0, res.err
    pod = json.loads(res.out)["pod"]
    assert pod["status"] == "EXITED" and pod["state"] == "stopped_by_user"  # `runner stop` recorded it
    assert {r.status for r in graphql_calls(env)} <= {410}


def test_status_calls_an_unexplained_stop_of_a_spot_pod_an_interruption(train_env):
    env = train_env
    env.add_pod("RUNNING")
    env.fake.retire_graphql()
    env.fake.preempt(env.pod_id)  # no "Outbid" text reaches us: v2 only
    res = env.run("status", "--json")
    assert res.code == 0, res.err
    pod = json.loads(res.out)["pod"]
    assert pod["status"] == "EXITED" and pod["state"] == "preempted" and pod["last_status_change"] is None


# ---------------------------------------------------------------- preemption while training, GraphQL retired
LONG = "configs/long.yaml"


@pytest.fixture
def long_env(train_env, monkeypatch):
    fast_recovery(monkeypatch)
    train_env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.05))
    return train_env


def run_record(env, run_id: str) -> dict:
    return json.loads((env.state_dir / "dev" / "runs" / f"{run_id}.json").read_text())


def test_a_preemption_without_graphql_is_told_from_a_stop_and_replaced_on_demand(long_env):
    # No "Outbid" text anywhere (REST v2 has no history): an EXITED spot pod that neither the runner
    # nor the pod itself stopped was interrupted; it cannot be resumed with a bid any more, so recovery
    # replaces it through the stack under spot_fallback=on-demand, and says so.
    env = long_env
    env.add_pod("RUNNING", outputs={"spot_fallback": "on-demand", "max_on_demand_price": 0.8})
    old = env.pod_id
    recreate_on_up(env, interruptible=False)
    env.fake.retire_graphql()
    run = env.start("train", "--config", LONG, "--run-id", "nogql")
    env.wait_log("saved checkpoint-5")
    preempt(env)
    step = newest_complete(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    assert f"pod {old} was preempted" in res.err and "recovering automatically" in res.err
    assert "replacing the pod through the stack" in res.err
    assert env.stub.replaced() == [POD_URN] and env.fake.pods[old].status == "TERMINATED"
    assert_log_printed_exactly(res, env)
    header = attempts_in_log(env)[1][0]
    assert f"resume={env.workspace}/project/checkpoints/smoke/checkpoint-{step}" in header
    rec = run_record(env, "nogql")
    assert [a["market"] for a in rec["attempts"]] == ["spot", "on-demand"]
    assert rec["attempts"][0]["interruption"] == "preempted" and rec["attempts"][1]["recovery"] == "recreated"
    assert {r.status for r in graphql_calls(env)} == {410}


def test_a_preemption_without_graphql_under_fallback_fail_exits_4_not_5(long_env):
    env = long_env
    env.add_pod("RUNNING")  # spot_fallback: fail
    env.fake.retire_graphql()
    run = env.start("train", "--config", LONG, "--run-id", "nogqlfail")
    env.wait_log("saved checkpoint-5")
    preempt(env)
    res = env.finish(run, timeout=60)

    assert res.code == ExitCode.POD, res.err
    assert "retired its GraphQL API" in res.err and "spot_fallback is 'fail'" in res.err
    assert "spotFallback on-demand" in res.err and "RunPod API error" not in res.err
    assert env.stub.up_calls() == [] and env.pod.status == "EXITED" and env.pod.start_count == 1
    assert run_record(env, "nogqlfail")["status"] == "preempted"


def test_a_runner_stop_without_graphql_is_a_stop_not_a_preemption(long_env):
    # `runner stop` from another terminal: it records the stop before asking the API, so the
    # training runner reads the EXITED pod as stopped by the user and does not fight it.
    env = long_env
    env.add_pod("RUNNING")
    env.fake.retire_graphql()
    run = env.start("train", "--config", LONG, "--run-id", "stopped")
    env.wait_log("saved checkpoint-5")
    paths = StatePaths(env.state_dir, "dev").ensure()
    outputs = StackOutputs(stack="dev", pod_id=env.pod_id, market="spot")
    result = StackPod(outputs, env.fake.client(), StopLog.at(paths), start_timeout_s=30).stop()  # `runner stop`
    assert result.stopped
    kill_container(env, sigterm=True)  # Docker's SIGTERM to the container
    env.sshd.drop_connections()
    res = env.finish(run, timeout=60)

    assert res.code == ExitCode.POD, res.err
    assert (
        "was stopped (by you, `runner stop`, or itself)" in res.err
        and "preempted" not in res.err.split("was stopped")[0]
    )
    assert env.pod.status == "EXITED" and env.pod.start_count == 1  # not resumed
    assert env.stub.up_calls() == []
