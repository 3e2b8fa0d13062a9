"""Errors that say what to do: a bid below RunPod's minimum, a --host that does not answer."""

from __future__ import annotations

from runner.exitcodes import ExitCode
from standins.ports import free_port
from tests.fixtures.train_harness import shorten_timeouts, train_env  # noqa: F401

CONFIG = "configs/smoke.yaml"


def test_bid_below_the_minimum_at_resume_says_which_config_to_raise(train_env):
    env = train_env
    env.add_pod("EXITED")  # the stack's bid: $0.350/GPU-hour
    env.fake.set_price(env.pod.gpu_type, minimum_bid=0.4121)
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.POD, res.err  # the pod's problem, not an API failure (5)
    assert "RunPod refused the spot bid" in res.err and "below the minimum" in res.err
    assert "`pulumi config set bidPerGpu 0.413` and `pulumi up`" in res.err
    assert "RunPod API error" not in res.err
    assert env.pod.status == "EXITED"
    (refused,) = env.fake.billable_calls()  # the one resume (a GraphQL error, HTTP 200) ...
    assert refused.operation == "podBidResume" and env.pod.start_count == 1  # ... refused: it never started
    assert [r for r in env.fake.requests if r.action == "stop"] == []  # nothing started, nothing to stop


def test_host_where_nothing_listens_is_about_the_host_not_the_pod(train_env, monkeypatch):
    env = train_env
    shorten_timeouts(monkeypatch, host_banner_s=1.0)
    port = free_port()
    res = env.run("train", "--config", CONFIG, "--host", f"root@127.0.0.1:{port}", "--workspace", str(env.workspace))
    assert res.code == ExitCode.SSH, res.err
    assert f"no SSH server answered on 127.0.0.1:{port}" in res.err and "--host" in res.err
    assert "runner status" not in res.err and "the pod" not in res.err
    assert env.fake.requests == []  # --host never talks to RunPod
