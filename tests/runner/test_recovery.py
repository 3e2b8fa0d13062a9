"""Automatic recovery from spot preemption (runner/recovery.py) against the loopback pod.

The "pod" is the real sshd + the fake RunPod API (tests/fixtures/train_harness.py); a preemption is
made as RunPod makes it (tests/fixtures/recovery_harness.py): the API shows "Outbid", the container
gets SIGTERM (or only SIGKILL), SSH sessions die. Every test checks that training resumed from the
right checkpoint and that what the runner printed is the pod's log exactly: no line lost, none
printed twice.
"""

from __future__ import annotations

import json
import re

import pytest

from runner import cli
from runner.exitcodes import ExitCode
from standins.pulumi_cli import POD_URN
from tests.fixtures.pod_harness import git
from tests.fixtures.recovery_harness import (
    assert_log_printed_exactly,
    attempts_in_log,
    fast_recovery,
    interrupt_when,
    newest_complete,
    preempt,
    record,
    recreate_on_up,
    steps_of,
    user_stop,
    when_said,
)
from tests.fixtures.train_harness import shorten_timeouts, smoke_config, train_env, wait_for  # noqa: F401

LONG = "configs/long.yaml"


@pytest.fixture
def env(train_env, monkeypatch):
    fast_recovery(monkeypatch)
    train_env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.05))
    return train_env


def resumes(env) -> list:
    return [r for r in env.fake.billable_calls() if r.operation == "podBidResume"]


def boundary(res, attempt: int) -> str:
    lines = [ln for ln in res.err.splitlines() if f"── attempt {attempt} on " in ln]
    assert len(lines) == 1, f"expected one boundary line for attempt {attempt}: {lines}\n{res.err}"
    return lines[0]


def assert_resumed_from(env, attempt: int, step: int, max_steps: int = 40) -> None:
    header, *lines = attempts_in_log(env)[attempt - 1]
    want = f"resume={env.workspace}/project/checkpoints/smoke/checkpoint-{step}" if step else "resume=none"
    assert f"attempt={attempt} " in header and want in header, header
    if step:
        assert f"resumed from checkpoint-{step}" in lines
    assert steps_of(lines) == list(range(step + 1, max_steps + 1))


# ---------------------------------------------------------------- preemption mid-training
def test_preemption_mid_training_resumes_the_same_pod_from_the_newest_checkpoint(env):
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "mid")
    env.wait_log("saved checkpoint-10")
    preempt(env)  # Outbid + SIGTERM/SIGKILL + SSH gone
    step = newest_complete(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    assert_log_printed_exactly(res, env)
    assert len(attempts_in_log(env)) == 2
    assert_resumed_from(env, 2, step)
    assert "end state=preempted" in "\n".join(attempts_in_log(env)[0])  # the supervisor's footer
    assert len(resumes(env)) == 1 and env.fake.billable_calls() == resumes(env)  # same pod, no new one
    line = boundary(res, 2)
    assert f"pod {env.pod_id} (spot, $0.350/h), resumed from checkpoint-{step}" in line
    rec = record(env, "mid")
    assert rec["status"] == "succeeded" and rec["preemptions"] == 1 and rec["recoveries"] == 1
    first, second = rec["attempts"]
    assert first["interruption"] == "preempted" and first["state"] == "preempted"
    assert second["recovery"] == "resumed" and second["resume_from"].endswith(f"checkpoint-{step}")
    assert first["steps_lost"] == first["last_step"] - step >= 0 and rec["steps_lost"] == first["steps_lost"]
    assert rec["estimated_cost_usd"] > 0 and rec["gpu_hours"] > 0
    assert "attempts:    2 (1 preemption, 1 automatic recovery)" in res.err
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to stop itself at the end")


def test_only_the_first_launch_tells_the_pod_the_commit_it_may_skip_fetching_for(env):
    """RT_REPO_COMMIT is what `git ls-remote` saw seconds before the first launch; a relaunch after a
    preemption (maybe hours later) fetches the branch as ever."""
    env.add_pod("RUNNING")
    head = git(env.project, "rev-parse", "HEAD")
    plan = env.workspace / ".runner" / "supervise.json"
    run = env.start("train", "--config", LONG, "--run-id", "commit")
    env.wait_log("saved checkpoint-10")
    first = json.loads(plan.read_text())["env"]
    preempt(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    assert first.get("RT_REPO_COMMIT") == head
    assert len(attempts_in_log(env)) == 2
    assert "RT_REPO_COMMIT" not in json.loads(plan.read_text())["env"]


def test_preemption_without_sigterm_is_found_by_the_api_poll(env):
    # Docker SIGKILLed everything: no footer, state.json still says "running", and the SSH link is
    # not dropped here, so only the API tells the runner.
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "kill9")
    env.wait_log("saved checkpoint-5")
    preempt(env, sigterm=False, drop=False)
    assert env.state()["state"] == "running"
    step = newest_complete(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    assert "was preempted (outbid" in res.err
    assert "SSH link lost" not in res.err.split("was preempted")[0]  # found before any SSH drop
    assert_log_printed_exactly(res, env)
    assert_resumed_from(env, 2, step)
    assert "end state=preempted" not in env.log_text().split("attempt=2")[0]
    assert record(env, "kill9")["attempts"][0]["interruption"] == "preempted"


def test_preemption_during_setup_restarts_from_scratch(env):
    env.add_pod("RUNNING")
    env.venv_hold.touch()  # the venv setup waits: training not started
    run = env.start("train", "--config", LONG, "--run-id", "setup")
    env.wait_log("venv: creating")
    assert env.state()["state"] == "setup"
    preempt(env)
    env.venv_hold.unlink()
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    assert_log_printed_exactly(res, env)
    assert len(attempts_in_log(env)) == 2
    assert_resumed_from(env, 2, 0)
    assert "from scratch" in boundary(res, 2)
    first = record(env, "setup")["attempts"][0]
    assert first["interruption"] == "preempted" and first["steps_lost"] == 0 and first["last_step"] is None
    assert first["seconds_lost"] == 0  # nothing trained, nothing redone
    assert "lost:" not in res.err


def test_preemption_during_a_checkpoint_save_skips_the_partial_checkpoint(env):
    env.write_config(LONG, smoke_config(max_steps=20, save_steps=5, step_seconds=0.05, save_seconds=30))
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "save")
    ckpt = env.workspace / "project" / "checkpoints" / "smoke" / "checkpoint-5"
    wait_for(lambda: (ckpt / "model.safetensors").is_file(), 30, "the first save to start")
    assert not (ckpt / "trainer_state.json").exists()
    preempt(env)
    env.write_config(LONG, smoke_config(max_steps=20, save_steps=5, step_seconds=0.05))  # fast saves now
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    assert res.err.count("skipped incomplete checkpoint checkpoint-5: trainer_state.json missing") == 1  # once
    assert_log_printed_exactly(res, env)
    assert_resumed_from(env, 2, 0, max_steps=20)  # nothing complete to resume from
    assert record(env, "save")["attempts"][0]["steps_lost"] == 5


def test_a_link_that_drops_while_the_follower_connects_is_retried(env, monkeypatch):
    # The race a preemption right after the launch makes: the follower's first SSH handshake fails.
    from runner.errors import SshConnectError
    from runner.train.targets import PodTarget

    real, calls = PodTarget.connect, []

    def connect(self):
        calls.append(1)
        if len(calls) == 2:  # 1: the launch, 2: the follower's first link
            raise SshConnectError("SSH handshake with the pod failed (EOF)")
        return real(self)

    monkeypatch.setattr(PodTarget, "connect", connect)
    env.write_config(LONG, smoke_config(max_steps=10, save_steps=5, step_seconds=0.02))
    env.add_pod("RUNNING")
    res = env.run("train", "--config", LONG, "--run-id", "race")

    assert res.code == 0, res.err
    assert "SSH link lost (SSH handshake with the pod failed (EOF)); reconnecting" in res.err
    assert_log_printed_exactly(res, env)


# ---------------------------------------------------------------- the pod cannot be resumed
def test_no_capacity_on_resume_replaces_the_pod_through_the_stack(env):
    # The pod still exists (EXITED) but its host has no free GPU: a refresh would keep it, so the
    # runner asks Pulumi to replace it (`--replace <pod_urn>`); the stub's up deletes the old pod
    # first, as the provider's delete-before-replace does, then creates the new one.
    env.add_pod("RUNNING")
    old = env.pod_id
    recreate_on_up(env)
    env.fake.inject("podBidResume", "not_enough_gpus_on_host")
    run = env.start("train", "--config", LONG, "--run-id", "cap")
    env.wait_log("saved checkpoint-10")
    preempt(env)
    step = newest_complete(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    new = env.stub.behaviour()["outputs"]["pod_id"]
    [up] = env.stub.up_calls()
    assert up["argv"][:4] == ["up", "--refresh", "--yes", "--skip-preview"]
    assert up["replace"] == POD_URN and up["argv"][up["argv"].index("--replace") + 1] == POD_URN
    assert up["argv"][up["argv"].index("--stack") + 1] == "dev"
    assert new != old
    assert env.fake.pods[old].status == "TERMINATED"  # replaced, not left behind
    assert env.fake.pods[new].status == "EXITED"  # trained there, stopped itself
    assert "not enough free GPUs" in res.err and f"replacing pod {old} through the stack" in res.err
    assert f"pulumi:     - runpod:Pod deleted {old}" in res.err and "pulumi:     + runpod:Pod created" in res.err
    assert f"pod {new} (spot, $0.300/h), resumed from checkpoint-{step}" in boundary(res, 2)
    assert_log_printed_exactly(res, env)
    assert_resumed_from(env, 2, step)
    rec = record(env, "cap")
    assert rec["pod_id"] == new and [a["pod_id"] for a in rec["attempts"]] == [old, new]
    assert rec["attempts"][1]["recovery"] == "recreated"


def test_a_pod_another_machine_replaced_meanwhile_is_used_not_replaced_again(env, monkeypatch):
    # The recovery lock is per machine. A watcher on another machine (an always-on server) replaced the pod
    # while this runner was finding that the old one cannot be resumed: this runner must take the stack's
    # new pod, not `pulumi up --replace` again (which would replace the pod the other party relaunched on).
    env.add_pod("RUNNING")
    old = env.pod_id
    env.fake.inject("podBidResume", "not_enough_gpus_on_host")
    recreate_on_up(env)  # were this runner to run `pulumi up`, the stub would create yet another pod

    def elsewhere() -> None:
        env.fake.client().terminate_pod(old)  # the other party's delete-before-replace
        env.add_pod("RUNNING")  # its new pod, named by the stack's outputs from now on

    when_said(monkeypatch, lambda m: "replacing it through the stack" in m, elsewhere)
    run = env.start("train", "--config", LONG, "--run-id", "other")
    env.wait_log("saved checkpoint-10")
    preempt(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    new = env.pod_id
    assert new != old and env.stub.up_calls() == []  # this runner ran no `pulumi up`
    assert f"the stack's pod is now {new}, not {old}: another runner or watcher recreated it" in res.err
    assert env.fake.pods[new].status == "EXITED"  # trained there, stopped itself
    rec = record(env, "other")
    assert [a["pod_id"] for a in rec["attempts"]] == [old, new] and rec["attempts"][1]["recovery"] == "recreated"


def test_no_capacity_on_a_stack_without_pod_urn_warns_and_falls_back(env):
    # A stack deployed before the pod_urn output: the plain refresh+up keeps the stopped pod (the
    # real provider's read keeps an EXITED pod; the stub's up changes nothing), the second start
    # finds no capacity either, and the runner says how to get the output.
    env.add_pod("RUNNING", outputs={"pod_urn": None})
    env.fake.inject("podBidResume", "not_enough_gpus_on_host", count=2)
    run = env.start("train", "--config", LONG, "--run-id", "old")
    env.wait_log("saved checkpoint-5")
    preempt(env)
    res = env.finish(run, timeout=60)

    assert res.code == ExitCode.POD, res.err
    assert env.stub.replaced() == [None]  # plain `pulumi up --refresh --yes`
    assert "has no pod_urn output" in res.err and "Run `pulumi up` once to get the output" in res.err
    assert f"the stack kept pod {env.pod_id}" in res.err
    assert "Run `pulumi up` once so the stack exports pod_urn" in res.err and "--run-id old" in res.err
    assert env.pod.status == "EXITED" and record(env, "old")["status"] == "preempted"


def test_spot_withdrawn_with_on_demand_fallback_replaces_the_stopped_pod(env):
    # The stopped spot pod cannot be resumed as spot and stays in the stack on a refresh: only a
    # replacement lets the provider create it on demand (its fallback policy applies on create).
    env.add_pod("RUNNING", outputs={"spot_fallback": "on-demand", "max_on_demand_price": 0.8})
    old = env.pod_id
    recreate_on_up(env, interruptible=False)
    env.fake.remove_spot()
    run = env.start("train", "--config", LONG, "--run-id", "od")
    env.wait_log("saved checkpoint-5")
    preempt(env)
    step = newest_complete(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    assert env.stub.replaced() == [POD_URN] and env.fake.pods[old].status == "TERMINATED"
    assert "(on-demand, $0.690/h)" in boundary(res, 2)
    assert_log_printed_exactly(res, env)
    assert_resumed_from(env, 2, step)
    assert [a["market"] for a in record(env, "od")["attempts"]] == ["spot", "on-demand"]
    # the cost per market: the spot part at its rate, the on-demand part at its own
    cost = re.search(
        r"cost: +about \$(\d+\.\d{4}) for this run \(spot \$0\.300/h x [^=]+= \$(\d+\.\d{4}); "
        r"on-demand \$0\.690/h x [^=]+= \$(\d+\.\d{4})\)",
        res.err,
    )
    assert cost, res.err
    total, spot, on_demand = (float(x) for x in cost.groups())
    assert abs(total - spot - on_demand) <= 0.0002 and on_demand > 0


def test_a_terminated_pod_is_recreated_on_demand_when_the_stack_falls_back(env):
    env.add_pod("RUNNING", outputs={"spot_fallback": "on-demand", "max_on_demand_price": 0.8})
    recreate_on_up(env, interruptible=False)
    run = env.start("train", "--config", LONG, "--run-id", "gone")
    env.wait_log("saved checkpoint-5")
    preempt(env, terminate=True)
    step = newest_complete(env)
    res = env.finish(run, timeout=60)

    assert res.code == 0, res.err
    assert "no longer exists" in res.err and env.stub.replaced() == [None]  # gone: no --replace needed
    assert resumes(env) == []  # nothing to resume: recreated
    assert "(on-demand, $0.690/h)" in boundary(res, 2)
    assert_log_printed_exactly(res, env)
    assert_resumed_from(env, 2, step)
    rec = record(env, "gone")
    assert [a["market"] for a in rec["attempts"]] == ["spot", "on-demand"]
    assert rec["preemptions"] == 1 and rec["attempts"][1]["recovery"] == "recreated"


def test_spot_withdrawn_with_fallback_fail_stops_with_a_clear_error(env):
    env.add_pod("RUNNING")  # spot_fallback: fail
    env.fake.remove_spot()
    run = env.start("train", "--config", LONG, "--run-id", "nospot")
    env.wait_log("saved checkpoint-5")
    preempt(env)
    res = env.finish(run, timeout=60)

    assert res.code == ExitCode.POD, res.err
    assert "spot_fallback is 'fail'" in res.err and "spotFallback on-demand" in res.err
    assert env.stub.up_calls() == []  # no recreate under policy "fail"
    assert env.pod.status == "EXITED" and env.pod.start_count == 1  # the refused resume started nothing
    assert record(env, "nospot")["status"] == "preempted"


# ---------------------------------------------------------------- Ctrl-C during a recovery
def test_ctrl_c_while_the_resumed_pod_boots_stops_it(env, monkeypatch):
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "ctrlc")
    env.wait_log("saved checkpoint-5")
    env.fake.boot_seconds = 30.0  # the resumed pod boots slowly: Ctrl-C meanwhile
    fired = interrupt_when(monkeypatch, lambda m: m.startswith(f"waiting for pod {env.pod_id} to be RUNNING"))
    preempt(env)
    res = env.finish(run, timeout=60)

    assert fired and res.code == 130, res.err
    assert len(resumes(env)) == 1  # the recovery did resume the pod ...
    assert env.pod.status == "EXITED" and env.pod.last_status_change.startswith(
        "Exited by user"
    )  # ... and it was stopped
    assert "before training was relaunched: nothing trains on pod" in res.err
    assert f"pod {env.pod_id} stopped by the runner" in res.err
    assert "Resume with `python -m runner train --config configs/long.yaml --run-id ctrlc`" in res.err
    assert len(attempts_in_log(env)) == 1  # nothing was relaunched
    rec = record(env, "ctrlc")
    assert rec["status"] == "interrupted" and rec["exit_code"] == 130 and rec["pod_stop"] == "stopped by the runner"


def test_ctrl_c_after_the_relaunch_detaches(env, monkeypatch):
    shorten_timeouts(monkeypatch, ack_wait_s=1)  # the pod stops itself 1 s after the end
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "later")
    env.wait_log("saved checkpoint-5")
    fired = interrupt_when(monkeypatch, lambda m: m.startswith("── attempt 2 on "))
    preempt(env)
    res = env.finish(run, timeout=60)

    assert fired and res.code == 130, res.err
    assert "detached: training keeps running" in res.err and "stopped by the runner" not in res.err
    assert len(resumes(env)) == 1 and env.pod.status == "RUNNING"
    wait_for(
        lambda: (env.state() or {}).get("attempt") == 2 and env.state()["state"] == "succeeded",
        30,
        "the relaunched attempt to finish on its own",
    )
    wait_for(lambda: env.pod.status == "EXITED", 20, "the pod to stop itself")
    assert record(env, "later")["status"] == "detached"


# ---------------------------------------------------------------- limits
def test_max_recoveries_exhausted_stops_with_how_to_resume(env):
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "lim", "--max-recoveries", "1")
    env.wait_log("saved checkpoint-5")
    preempt(env)
    wait_for(
        lambda: len(attempts_in_log(env)) == 2 and "saved checkpoint-" in "\n".join(attempts_in_log(env)[1]),
        30,
        "attempt 2 to save a checkpoint",
    )
    preempt(env)
    res = env.finish(run, timeout=60)

    assert res.code == ExitCode.POD, res.err
    assert "already recovered 1 time," in res.err and "--max-recoveries 1" in res.err
    assert "python -m runner train --config configs/long.yaml --run-id lim" in res.err
    assert len(resumes(env)) == 1 and env.pod.status == "EXITED"
    assert_log_printed_exactly(res, env)  # everything the pod wrote, to the 2nd footer
    rec = record(env, "lim")
    assert rec["status"] == "preempted" and rec["exit_code"] == ExitCode.POD
    assert rec["preemptions"] == 2 and rec["recoveries"] == 1 and len(rec["attempts"]) == 2


def test_budget_reached_during_the_recovered_attempt_stops_the_pod(env):
    # $3/h (the bid): $0.004 is about 4.8 s of pod time, well after the first preemption.
    env.write_config(LONG, smoke_config(max_steps=2000, save_steps=5, step_seconds=0.05))
    env.add_pod("RUNNING", bid_per_gpu=3.0, outputs={"bid_per_gpu": 3.0, "cost_per_hr": 3.0})
    run = env.start("train", "--config", LONG, "--run-id", "money", "--budget-usd", "0.004")
    env.wait_log("saved checkpoint-5")
    preempt(env)
    res = env.finish(run, timeout=60)

    assert res.code == ExitCode.POD, res.err
    assert "budget reached" in res.err and "--run-id money" in res.err
    assert env.pod.status == "EXITED" and len(resumes(env)) == 1
    rec = record(env, "money")
    assert rec["status"] == "interrupted" and rec["recoveries"] == 1
    assert rec["attempts"][1]["interruption"] == "budget"
    assert rec["estimated_cost_usd"] >= 0.004
    out = res.lines
    assert out == env.log_text().splitlines()[: len(out)]  # nothing lost or repeated up to the stop


def test_a_stop_by_the_user_is_not_fought(env):
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "mine")
    env.wait_log("saved checkpoint-5")
    user_stop(env)
    res = env.finish(run, timeout=60)

    assert res.code == ExitCode.POD, res.err
    assert "was stopped (by you" in res.err and "--run-id mine" in res.err
    assert env.fake.billable_calls() == [] and env.pod.status == "EXITED"
    assert record(env, "mine")["attempts"][0]["interruption"] == "stopped_by_user"


# ---------------------------------------------------------------- status shows the accounting
def test_status_shows_the_recovery_accounting(env, capsys):
    env.add_pod("RUNNING")
    run = env.start("train", "--config", LONG, "--run-id", "acct")
    env.wait_log("saved checkpoint-10")
    preempt(env)
    res = env.finish(run, timeout=60)
    assert res.code == 0, res.err
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to stop itself")

    capsys.readouterr()
    assert cli.main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    acc = report["training"]["accounting"]
    rec = record(env, "acct")
    assert acc["attempts"] == 2 and acc["preemptions"] == 1 and acc["recoveries"] == 1
    assert acc["steps_lost"] == rec["steps_lost"] and acc["gpu_hours"] == rec["gpu_hours"]
    loss = report["training"]["loss"]  # the loss over both attempts, from the record
    assert loss["source"] == "record" and loss["points"] == rec["loss_points"]
    assert (loss["first_step"], loss["last_step"]) == (1, 40) and loss["last"] == rec["loss_points"][-1][1]
    assert cli.main(["status"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"attempts: +2 \(1 preemption, 1 automatic recovery\)", text), text


def test_the_summary_suggests_a_checkpoint_interval_when_saves_cost_more_than_preemptions_do(env):
    # Saves of 0.3 s every 5 steps of 0.05 s, and a preemption within seconds of pod time: Young/Daly
    # puts the interval far above 5 steps; the summary says so in the config's save_steps.
    env.write_config(
        "configs/saves.yaml", smoke_config(max_steps=60, save_steps=5, step_seconds=0.05, save_seconds=0.3)
    )
    env.add_pod("RUNNING")
    run = env.start("train", "--config", "configs/saves.yaml", "--run-id", "saves")
    env.wait_log("saved checkpoint-20")
    preempt(env)
    res = env.finish(run, timeout=90)
    assert res.code == 0, res.err
    line = next((ln for ln in res.err.splitlines() if "checkpoints:" in ln), None)
    assert line is not None, res.err
    suggested = int(re.search(r"save_steps 5 -> about (\d+)", line).group(1))
    assert suggested > 5 and "Young/Daly" in line
