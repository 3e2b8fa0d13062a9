"""`runner train --local`: the pod-side launcher on this machine, the same code path as a pod.

No RunPod API, no SSH: a LocalShell runs remote/remote_train.sh with `bash -s`, the training repo
is the project's own git checkout (committed content), the workspace a local directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from runner.exitcodes import ExitCode
from tests.fixtures.train_harness import (  # noqa: F401
    ROOT,
    assert_printed_is_the_log,
    local_env,
    smoke_config,
    step_numbers,
    wait_for,
)

CONFIG = "configs/smoke.yaml"


def local_record(env) -> dict:
    d = env.state_dir / "local"
    run_id = (d / "last_run").read_text().strip()
    return json.loads((d / "runs" / f"{run_id}.json").read_text())


def test_local_run_end_to_end(local_env):
    env = local_env
    res = env.run("train", "--local", "--config", CONFIG, "--workspace", str(env.workspace))

    assert res.code == 0, res.err
    assert_printed_is_the_log(res, env)
    assert step_numbers(res.lines) == list(range(1, 13))
    assert "training succeeded: exit code 0" in res.err and "checkpoint-12" in res.err
    assert "cost:" not in res.err  # nothing billed on this machine
    # the project's own checkout was cloned (its branch), the launcher told not to stop any pod
    assert (env.workspace / "project" / ".git").is_dir()
    assert "RT_STOP_POD=0" in env.log_text()
    # --local runs on no pod: neither the runner nor the log speaks of one
    assert not re.findall(r".*\bpods?\b.*", res.err + res.out, re.I), res.err + res.out
    rec = local_record(env)
    assert rec["target"] == "local" and rec["status"] == "succeeded" and rec["exit_code"] == 0
    assert not (env.state_dir / "dev").exists()  # never mixed with the stack pod's runs


def test_local_default_workspace_is_the_projects_local_workspace(local_env):
    env = local_env
    res = env.run("train", "--local", "--config", CONFIG)
    assert res.code == 0, res.err
    assert (env.project / ".local-workspace" / "logs" / "current.log").is_file()
    assert (env.project / ".local-workspace" / "project" / "checkpoints" / "smoke" / "checkpoint-12").is_dir()


def test_local_failing_run_exits_with_trainings_code(local_env):
    env = local_env
    env.write_config("configs/fail.yaml", smoke_config(fail_at_step=2))
    res = env.run("train", "--local", "--config", "configs/fail.yaml", "--workspace", str(env.workspace))
    assert res.code == 3, res.err
    assert "training FAILED: exit code 3" in res.err
    assert local_record(env)["status"] == "failed"


def test_local_second_run_resumes_from_the_newest_checkpoint(local_env):
    env = local_env
    env.write_config("configs/short.yaml", smoke_config(max_steps=6, save_steps=3))
    first = env.run("train", "--local", "--config", "configs/short.yaml", "--workspace", str(env.workspace))
    assert first.code == 0, first.err
    env.write_config("configs/short.yaml", smoke_config(max_steps=9, save_steps=3))

    res = env.run("train", "--local", "--config", "configs/short.yaml", "--workspace", str(env.workspace))

    assert res.code == 0, res.err
    assert "resumed from checkpoint-6" in res.out
    assert step_numbers(res.lines) == [7, 8, 9]


def test_uncommitted_config_is_refused_before_the_launch_unless_allowed(local_env):
    env = local_env
    env.write_config("configs/draft.yaml", smoke_config(), commit=False)
    res = env.run("train", "--local", "--config", "configs/draft.yaml", "--workspace", str(env.workspace))
    assert res.code == ExitCode.USAGE
    assert "configs/draft.yaml is not in branch main" in res.err and "--allow-unpushed" in res.err
    assert "launching run" not in res.err and not env.log_file.exists()
    # --allow-unpushed: the old warning, then the launcher itself does not find it in its clone
    res = env.run(
        "train", "--local", "--config", "configs/draft.yaml", "--workspace", str(env.workspace), "--allow-unpushed"
    )
    assert "warning: configs/draft.yaml is not in branch main" in res.err
    assert "config configs/draft.yaml is not committed" in res.err
    assert res.code == ExitCode.USAGE and "did not start training" in res.err and "configs/draft.yaml" in res.err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "terminal-closed"])
def test_ctrl_c_detaches_and_training_keeps_running(local_env, signum):
    """The real CLI as a process: SIGINT (Ctrl-C) or SIGHUP (the terminal closed) while following -> exit 130,
    how to come back, training goes on."""
    env = local_env
    env.write_config("configs/long.yaml", smoke_config(max_steps=60, step_seconds=0.05))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "train",
            "--local",
            "--config",
            "configs/long.yaml",
            "--workspace",
            str(env.workspace),
        ],
        cwd=env.project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        env.wait_log("step 5/60")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "detached: training keeps running" in err
    assert f"tail -f {env.workspace}/logs/current.log" in err
    assert "Traceback" not in err
    state = env.wait_state("succeeded", timeout=30)  # it finished without us
    assert state["exit_code"] == 0
    assert "step 60/60" in env.log_text()


def test_local_needs_no_cloud_settings(local_env, monkeypatch):
    """No API key, no SSH key, no REPO_URL: --local still runs (the project checkout is the repo)."""
    env = local_env
    monkeypatch.delenv("REPO_URL")
    monkeypatch.setenv("SSH_KEY_PATH", str(env.root / "no-such-key"))
    res = env.run("train", "--local", "--config", CONFIG, "--workspace", str(env.workspace))
    assert res.code == 0, res.err
    assert f"repo {env.project} (main)" in res.err
