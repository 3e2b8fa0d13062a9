"""GPU use and billed cost in `runner train`'s summary: the GPUs' utilization sampled from the API reads the
runner makes while following (the fake scripts it per attempt), RunPod's billed amount from
GET /v2/billing/pods beside the estimate, and both labelled plainly when RunPod does not report them."""

from __future__ import annotations

import pytest

from runner.train import gpu_use
from tests.fixtures.recovery_harness import fast_recovery, preempt, record
from tests.fixtures.train_harness import shorten_timeouts, smoke_config, train_env, wait_for  # noqa: F401

LONG = "configs/long.yaml"


@pytest.fixture
def env(train_env, monkeypatch):
    fast_recovery(monkeypatch)
    shorten_timeouts(monkeypatch, pod_poll_s=0.05)  # many API reads in a short run
    train_env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.05))
    return train_env


def row(res, name: str) -> str:
    lines = [ln for ln in res.err.splitlines() if f"  {name}:" in ln]
    assert len(lines) == 1, f"one {name!r} row expected in the summary:\n{res.err}"
    return lines[0].split(f"  {name}:", 1)[1].strip()


def test_the_summary_shows_each_attempts_gpu_use_and_runpods_billed_amount(env):
    env.add_pod("RUNNING")
    env.fake.backdate_billing(env.pod_id, 600)  # the pod ran ten minutes before this run (in its hour, maybe)
    env.fake.set_gpu_use(env.pod_id, [(30, 41)])
    run = env.start("train", "--config", LONG, "--run-id", "gpu")
    env.wait_log("saved checkpoint-10")
    preempt(env)
    env.fake.set_gpu_use(env.pod_id, [(74, 62)])  # the resumed pod's GPU is busier
    res = env.finish(run, timeout=60)
    assert res.code == 0, res.err

    rec = record(env, "gpu")
    first, second = rec["attempts"]
    assert (first["gpu_util"], first["gpu_memory"]) == (30.0, 41.0) and first["gpu_readings"] >= 1
    assert (second["gpu_util"], second["gpu_memory"]) == (74.0, 62.0) and second["gpu_readings"] >= 1
    readings = first["gpu_readings"] + second["gpu_readings"]
    mean = round((30 * first["gpu_readings"] + 74 * second["gpu_readings"]) / readings, 1)
    assert rec["gpu_util"] == pytest.approx(mean) and rec["gpu_readings"] == readings
    shown = row(res, "GPU use")
    assert shown.startswith(f"{mean:.0f}% on average (memory ") and f"{readings} API readings" in shown
    assert (gpu_use.LOW_HINT in shown) == (mean < gpu_use.LOW_UTIL)
    assert row(res, "by attempt") == "attempt 1 30%, attempt 2 74%"

    # RunPod's billed amount for the run's pod, from the hour the run started, next to the estimate.
    since = rec["billed_since"]
    assert since == rec["attempts"][0]["started_at"][:13] + ":00:00Z" and rec["billed_pods"] == [env.pod_id]
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to stop itself")
    asked_now = env.fake.client().pod_billing(env.pod_id, start=since).total_usd
    assert 0 < rec["billed_usd"] <= asked_now + 1e-4, "billed: what the endpoint said when the run ended"
    assert row(res, "billed").startswith(f"${rec['billed_usd']:.4f} billed by RunPod (pod {env.pod_id}, hourly from ")
    assert row(res, "cost").startswith(f"about ${rec['estimated_cost_usd']:.4f}") and "an estimate" not in row(
        res, "cost"
    )


def test_low_use_gets_a_hint_unreported_is_said_and_a_silent_billing_leaves_the_estimate(env):
    env.add_pod("RUNNING")
    env.fake.set_gpu_use(env.pod_id, [(12, 30)])
    env.fake.inject("rest:GET /v2/billing/pods", "auth", count=5)  # an API key without the billing right
    run = env.start("train", "--config", LONG, "--run-id", "low")
    env.wait_log("step 20/40")
    env.fake.hide_runtime(env.pod_id)  # from here on RunPod's answers leave runtime out
    res = env.finish(run, timeout=60)
    assert res.code == 0, res.err
    rec = record(env, "low")
    attempt = rec["attempts"][0]
    assert attempt["gpu_util"] == 12.0 and attempt["gpu_readings"] >= 1 and attempt["gpu_unreported"] >= 1
    shown = row(res, "GPU use")
    assert (
        shown.startswith("12% on average (memory 30%)")
        and "data loading (or evaluation) may be the bottleneck" in shown
    )
    assert "by attempt" not in res.err
    assert rec["billed_usd"] is None
    assert row(res, "cost").endswith(", an estimate")
    assert row(res, "billed") == "not reported by RunPod's billing (the estimate stands alone)"


def test_a_pod_that_never_reports_its_gpus_says_so_never_zero(env):
    env.add_pod("RUNNING")  # the fake reports no runtime.gpus unless a test scripts them
    res = env.run("train", "--config", LONG, "--run-id", "quiet")
    assert res.code == 0, res.err
    assert row(res, "GPU use") == gpu_use.NOT_REPORTED
    rec = record(env, "quiet")
    assert rec["gpu_util"] is None and rec["attempts"][0]["gpu_util"] is None
