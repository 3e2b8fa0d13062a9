"""The runner with RunPod's GraphQL retired (the fake answers 410 Gone on /graphql): `runner train` on a
stopped spot pod says spot is gone and recovers or exits 4 by the stack's spot_fallback (never exit 5,
"API error"); `runner status` and `runner stop` work on REST v2 alone."""
from __future__ import annotations

import json

from standins.pulumi_cli import POD_URN
from tests.runner.recovery_harness import fast_recovery, recreate_on_up
from tests.runner.train_harness import assert_printed_is_the_log, smoke_config, train_env, wait_for  # noqa: F401

CONFIG = "configs/smoke.yaml"


def record(env) -> dict:
    stack_dir = env.state_dir / "dev"
    run_id = (stack_dir / "last_run").read_text().strip()
    return json.loads((stack_dir / "runs" / f"{run_id}.json").read_text())


def graphql_calls(env) -> list:
    return [r for r in env.fake.requests if r.path == "/graphql"]


def test_train_on_a_stopped_spot_pod_without_fallback_exits_4_and_says_what_to_set(train_env):
    env = train_env
    env.add_pod("EXITED")                                      # a spot pod; spot_fallback: fail
    env.fake.retire_graphql()

    res = env.run("train", "--config", CONFIG)

    assert res.code == 4, res.err                              # the pod's problem, not "API error" (5)
    assert "retired its GraphQL API" in res.err and "cannot be resumed as a spot pod" in res.err
    assert "pulumi config set spotFallback on-demand" in res.err and "maxOnDemandPricePerGpu" in res.err
    assert "RunPod API error" not in res.err
    assert env.pod.status == "EXITED" and env.pod.start_count == 1     # nothing was started
    assert env.stub.up_calls() == []                                   # policy "fail": no replacement
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
    assert env.stub.replaced() == [POD_URN]                            # through the stack, delete-before-replace
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
    assert json.loads(res.out)["pod"]["status"] == "EXITED"
    assert {r.status for r in graphql_calls(env)} <= {410}
