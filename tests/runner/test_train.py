"""`runner train` against the real sshd playing the pod and the fake RunPod API (tests/fixtures/train_harness.py).

The launcher really runs on the "pod" (over SSH, `bash -s`), really clones the training repo,
starts tmux and the smoke trainer, and stops the pod through the fake API with the pod's own key.
"""

from __future__ import annotations

import json
import re

from remote.podside.contract import parse_header
from runner.exitcodes import ExitCode
from runner.remote.hostkeys import HostKeyStore
from tests.fixtures.train_harness import (  # noqa: F401
    assert_printed_is_the_log,
    shorten_timeouts,
    smoke_config,
    step_numbers,
    train_env,
    wait_for,
)

CONFIG = "configs/smoke.yaml"


def record(env, run_id: str | None = None) -> dict:
    stack_dir = env.state_dir / "dev"
    run_id = run_id or (stack_dir / "last_run").read_text().strip()
    return json.loads((stack_dir / "runs" / f"{run_id}.json").read_text())


def pod_stops(env, auth_prefix: str) -> list:
    return [r for r in env.stop_requests() if (r.auth or "").startswith(auth_prefix) and r.status == 200]


# ---------------------------------------------------------------- the normal run
def test_run_to_success_prints_the_log_stops_the_pod_and_records_it(train_env):
    env = train_env
    env.add_pod("RUNNING")

    res = env.run("train", "--config", CONFIG)

    assert res.code == 0, res.err
    assert_printed_is_the_log(res, env)
    assert step_numbers(res.lines) == list(range(1, 13))
    header = parse_header(res.lines[0])
    assert header is not None and header.attempt == 1
    # the summary
    assert "training succeeded: exit code 0" in res.err
    assert re.search(r"checkpoint: +\S+/checkpoints/smoke/checkpoint-12", res.err), res.err
    # the rate the API reports for the running pod (its bid), not the stack output
    assert re.search(r"cost: +about \$\d+\.\d{4} \(\$0\.300/h", res.err), res.err
    assert "stopped by itself" in res.err
    # the loss curve: a chart under the summary, the points in the record
    chart = [line for line in res.err.splitlines() if "┤" in line or "└ steps" in line]
    assert len(chart) == 5 and chart[0].startswith("[runner]   loss "), res.err
    losses = {int(m[0]): float(m[1]) for m in re.findall(r"step (\d+)/12 loss (\S+)", res.out)}
    low = min(losses, key=lambda k: losses[k])
    assert chart[-1].endswith(f"└ steps 1-12 · min {losses[low]:.4g} at step {low} · last {losses[12]:.4g}")
    # the pod stopped itself through the API with its own key; the runner did not need to
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to be stopped")
    assert pod_stops(env, "pod:") and not pod_stops(env, "account")
    assert env.fake.billable_calls() == []  # it was running already
    # the local record
    rec = record(env)
    assert rec["status"] == "succeeded" and rec["exit_code"] == 0 and rec["target"] == "pod"
    assert rec["pod_id"] == env.pod_id and rec["last_checkpoint"].endswith("checkpoint-12")
    assert rec["attempts"][0]["attempt"] == 1 and rec["attempts"][0]["log_offset"] == 0
    assert rec["estimated_cost_usd"] is not None and rec["pod_seconds"] > 0
    assert rec["loss_points"] == [[k, v] for k, v in sorted(losses.items())]
    # nothing secret left in what the runner printed or recorded
    for secret in (env.fake.api_key, env.fake.pod_api_key(env.pod_id)):
        assert secret not in res.out + res.err
        assert secret not in json.dumps(rec)


def test_failing_training_exits_with_its_exit_code_and_the_pod_still_stops(train_env):
    env = train_env
    env.add_pod("RUNNING")
    env.write_config("configs/fail.yaml", smoke_config(fail_at_step=4))

    res = env.run("train", "--config", "configs/fail.yaml")

    assert res.code == 3, res.err  # smoke_train's FAIL_EXIT_CODE
    assert "training FAILED: exit code 3" in res.err
    assert "simulated failure at step 4" in res.out
    assert step_numbers(res.lines) == [1, 2, 3]
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to be stopped")
    assert record(env)["status"] == "failed" and record(env)["exit_code"] == 3


def test_a_pod_that_does_not_stop_itself_is_stopped_by_the_runner(train_env, monkeypatch):
    env = train_env
    env.add_pod("RUNNING", self_stop=False)  # the pod has no API key: its own stop fails
    shorten_timeouts(monkeypatch, stop_verify_s=1.0)

    res = env.run("train", "--config", CONFIG)

    assert res.code == 0, res.err
    assert "did not stop itself" in res.err and "stopped by the runner" in res.err
    assert env.pod.status == "EXITED"
    assert pod_stops(env, "account")


def test_keep_pod_leaves_it_running(train_env):
    env = train_env
    env.add_pod("RUNNING")

    res = env.run("train", "--config", CONFIG, "--keep-pod")

    assert res.code == 0, res.err
    assert "still running (--keep-pod)" in res.err
    assert env.pod.status == "RUNNING" and env.stop_requests() == []
    assert "RT_STOP_POD=0" in env.log_text()


# ---------------------------------------------------------------- the pod's state before we start
def test_a_stopped_pod_is_resumed_first_and_reached_on_its_new_port(train_env):
    env = train_env
    env.add_pod("EXITED")
    old_port = env.pod.ssh_port

    res = env.run("train", "--config", CONFIG)

    assert res.code == 0, res.err
    resumes = [r for r in env.fake.billable_calls() if r.operation == "podBidResume"]
    assert len(resumes) == 1
    assert env.pod.ssh_port != old_port
    assert f"127.0.0.1:{env.pod.ssh_port}" in res.err
    assert_printed_is_the_log(res, env)
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to be stopped again")


def test_training_already_running_is_attached_to_not_started_twice(train_env):
    env = train_env
    env.add_pod("RUNNING")
    env.write_config("configs/long.yaml", smoke_config(max_steps=40, step_seconds=0.05))
    first = env.run("train", "--config", "configs/long.yaml", "--detach", "--run-id", "first")
    assert first.code == 0, first.err
    env.wait_log("step 3/40")

    res = env.run("train", "--config", "configs/long.yaml")

    assert res.code == 0, res.err
    assert "already running" in res.err and "run first" in res.err
    assert len(env.headers()) == 1  # one launch, one training process
    assert step_numbers(res.lines) == list(range(1, 41))
    assert step_numbers(env.log_text().splitlines()) == list(range(1, 41))
    assert "run=first" in res.lines[0]


def test_detach_starts_and_returns_and_the_pod_stops_itself_at_the_end(train_env):
    env = train_env
    env.add_pod("RUNNING")

    res = env.run("train", "--config", CONFIG, "--detach", "--run-id", "bg-1")

    assert res.code == 0, res.err
    assert res.out == ""  # no log followed
    assert "python -m runner logs -f" in res.err and "python -m runner status" in res.err
    assert record(env, "bg-1")["status"] == "detached"
    state = env.wait_state("succeeded")
    assert state["run_id"] == "bg-1"
    wait_for(lambda: env.pod.status == "EXITED", 15, "the pod to stop itself")


# ---------------------------------------------------------------- interruptions
def test_ssh_drop_mid_run_loses_and_repeats_no_line(train_env):
    env = train_env
    env.add_pod("RUNNING")
    env.write_config("configs/long.yaml", smoke_config(max_steps=60, step_seconds=0.04))

    run = env.start("train", "--config", "configs/long.yaml")
    env.wait_printed("step 8/60", stream="out")
    env.sshd.drop_connections()
    env.wait_printed("reconnected")
    env.wait_printed("step 30/60", stream="out")
    env.sshd.drop_connections()
    res = env.finish(run)

    assert res.code == 0, res.err
    assert res.err.count("SSH link lost") == 2 and res.err.count("reconnected") == 2
    assert_printed_is_the_log(res, env)
    assert step_numbers(res.lines) == list(range(1, 61))


def test_resume_after_a_kill_continues_from_the_newest_complete_checkpoint(train_env):
    env = train_env
    env.add_pod("RUNNING")
    env.write_config("configs/long.yaml", smoke_config(max_steps=30, save_steps=5, step_seconds=0.05))
    first = env.run("train", "--config", "configs/long.yaml", "--detach", "--run-id", "r1")
    assert first.code == 0, first.err
    env.wait_log("saved checkpoint-10")
    env.kill_training()  # the pod died mid-run (no clean end)
    env.wait_session_gone()
    newest = env.newest_complete_checkpoint()
    step = int(newest.name.split("-")[1])

    res = env.run("train", "--config", "configs/long.yaml", "--run-id", "r1")

    assert res.code == 0, res.err
    assert f"── attempt 2 on pod {env.pod_id} (spot, $0.300/h), resumed from checkpoint-{step} ──" in res.err
    assert "attempt=2" in res.lines[0] and f"resume={newest}" in res.lines[0]
    assert f"resumed from checkpoint-{step}" in res.out
    assert step_numbers(res.lines) == list(range(step + 1, 31))
    rec = record(env, "r1")
    assert [a["attempt"] for a in rec["attempts"]] == [1, 2]
    assert rec["attempts"][1]["resume_from"] == str(newest) and rec["status"] == "succeeded"


def test_preemption_without_recoveries_left_is_reported_with_how_to_resume(train_env):
    # Automatic recovery is tested in tests/runner/test_recovery.py; --max-recoveries 0 turns it off.
    env = train_env
    env.add_pod("RUNNING")
    env.write_config("configs/long.yaml", smoke_config(max_steps=400, step_seconds=0.05))

    run = env.start("train", "--config", "configs/long.yaml", "--run-id", "pre-1", "--max-recoveries", "0")
    env.wait_log("step 5/400")
    env.fake.preempt(env.pod_id)
    env.sshd.drop_connections()
    res = env.finish(run, timeout=30)

    assert res.code == ExitCode.POD, res.err
    assert "preempted" in res.err and "--max-recoveries 0" in res.err
    assert "python -m runner train --config configs/long.yaml --run-id pre-1" in res.err
    assert env.fake.billable_calls() == []  # the pod was not resumed
    assert record(env, "pre-1")["status"] == "preempted"


# ---------------------------------------------------------------- --host
def test_host_target_trains_over_ssh_without_the_runpod_api(train_env):
    env = train_env
    host = f"{env.sshd.user}@{env.sshd.host}:{env.sshd.port}"

    res = env.run("train", "--config", CONFIG, "--host", host, "--workspace", str(env.workspace))

    assert res.code == 0, res.err
    assert_printed_is_the_log(res, env)
    assert "training succeeded" in res.err and "cost:" not in res.err
    assert env.fake.requests == [] and env.stub.calls() == []  # no API, no stack
    assert "RT_STOP_POD=0" in env.log_text()
    assert not re.findall(r".*\bpods?\b.*", res.err + res.out, re.I), res.err + res.out  # no pod here
    pin = HostKeyStore(env.state_dir / "dev" / "known_hosts").get(f"{env.sshd.host}:{env.sshd.port}")
    assert pin is not None and pin.host_key.line == env.sshd.known_host_key


# ---------------------------------------------------------------- bad input: clear error, no money
def test_missing_config_fails_before_any_api_call(train_env):
    env = train_env
    env.add_pod("EXITED")
    res = env.run("train", "--config", "configs/nope.yaml")
    assert res.code == ExitCode.USAGE
    assert "config configs/nope.yaml not found" in res.err and "configs/smoke.yaml" in res.err
    assert env.fake.requests == []


def test_config_without_output_dir_or_not_yaml_fails_before_any_api_call(train_env):
    env = train_env
    env.add_pod("EXITED")
    env.write_config("configs/noout.yaml", "max_steps: 3\n")
    env.write_config("configs/broken.yaml", "output_dir: [unclosed\n")

    res = env.run("train", "--config", "configs/noout.yaml")
    assert res.code == ExitCode.USAGE and "has no top-level output_dir" in res.err
    res = env.run("train", "--config", "configs/broken.yaml")
    assert res.code == ExitCode.USAGE and "not valid YAML" in res.err
    assert env.fake.requests == []


def test_no_stack_outputs_fails_before_any_billable_call(train_env):
    env = train_env
    env.stub.set(outputs={})
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.STACK and "pulumi up" in res.err
    assert env.fake.billable_calls() == []


def test_unreadable_ssh_key_fails_before_any_api_call(train_env, monkeypatch):
    env = train_env
    env.add_pod("EXITED")
    monkeypatch.setenv("SSH_KEY_PATH", str(env.root / "missing_key"))
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.USAGE and "missing_key does not exist" in res.err
    assert env.fake.requests == []


def test_missing_repo_url_fails_before_any_billable_call(train_env, monkeypatch):
    env = train_env
    env.add_pod("EXITED")
    monkeypatch.delenv("REPO_URL")
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.USAGE and "REPO_URL" in res.err
    assert env.fake.billable_calls() == []


def test_a_branch_missing_on_the_remote_fails_before_any_billable_call(train_env, monkeypatch):
    # Once found by the launcher's `git clone` after a resume; `git ls-remote` finds it here now.
    # (The launcher refusing is in tests/runner/test_release.py.)
    env = train_env
    env.add_pod("EXITED")
    monkeypatch.setenv("REPO_BRANCH", "no-such-branch")
    res = env.run("train", "--config", CONFIG)
    assert res.code == ExitCode.USAGE
    assert "branch 'no-such-branch' does not exist in" in res.err and "REPO_BRANCH" in res.err
    assert env.pod.status == "EXITED" and env.fake.billable_calls() == []


def test_budget_reached_stops_the_pod_and_says_how_to_resume(train_env):
    env = train_env
    env.add_pod("RUNNING")
    env.write_config("configs/long.yaml", smoke_config(max_steps=400, step_seconds=0.05))

    # $0.30/h: $0.0001 is spent after about 1.2 s of pod time
    res = env.run("train", "--config", "configs/long.yaml", "--budget-usd", "0.0001", "--run-id", "b1")

    assert res.code == ExitCode.POD, res.err
    assert "budget reached" in res.err and "--run-id b1" in res.err
    assert env.pod.status == "EXITED" and pod_stops(env, "account")
    assert record(env, "b1")["status"] == "interrupted"
