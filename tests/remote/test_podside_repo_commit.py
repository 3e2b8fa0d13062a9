"""RT_REPO_COMMIT: the pod skips `git fetch` when its checkout already has origin/<branch> at the commit
the runner's `git ls-remote` saw, and fetches exactly as before otherwise. Real bash, tmux and git;
a `git` stand-in first on PATH records each git command the launcher runs."""

from __future__ import annotations

import shlex
import shutil
import uuid

import pytest

from remote.podside.inputs import read_settings
from runner.train.remote_launch import RunPolicy
from tests.fixtures.pod_harness import PodSandbox, git, runner_inputs, write_executable


@pytest.fixture
def pod(tmp_path, venv_templates):
    sandbox = PodSandbox(
        tmp_path / "pod", session=f"rt-commit-{uuid.uuid4().hex[:10]}", venv_template=venv_templates["warm"]
    )
    real = shutil.which("git")
    assert real
    sandbox.git_log = sandbox.records / "git-argv.txt"
    write_executable(
        sandbox.bin / "git",
        f"""#!/bin/bash
printf '%s\\n' "$*" >> {shlex.quote(str(sandbox.git_log))}
exec {shlex.quote(real)} "$@"
""",
    )
    yield sandbox
    sandbox.cleanup()


def git_commands(pod: PodSandbox) -> list[str]:
    """The git subcommands of the last launch (the word after `-C <repo>`)."""
    words = [line.split() for line in pod.git_log.read_text().splitlines()]
    return [w[2] if w[:1] == ["-C"] else w[0] for w in words if w]


def relaunch(pod: PodSandbox, **overrides) -> dict:
    pod.git_log.unlink(missing_ok=True)
    run = pod.launch(RT_RUN_ID="r", RT_STOP_POD="0", **overrides)
    assert run.returncode == 0, run.stderr
    assert run.result["status"] == "started"
    pod.wait_finished()
    return run.result


def first_run(pod: PodSandbox) -> None:
    relaunch(pod)
    assert "clone" in git_commands(pod)


def full_head(pod: PodSandbox) -> str:
    return git(pod.origin, "rev-parse", "HEAD")


def test_the_fetch_is_skipped_when_the_pod_already_has_the_commit(pod):
    first_run(pod)
    commit = full_head(pod)
    result = relaunch(pod, RT_REPO_COMMIT=commit)
    assert "fetch" not in git_commands(pod), git_commands(pod)
    assert result["commit"] == commit[: len(result["commit"])]
    assert git(pod.repo_dir, "rev-parse", "HEAD") == commit


def test_a_new_commit_is_fetched_and_run(pod):
    first_run(pod)
    pod.write_config("configs/smoke.yaml", max_steps=50)
    new = pod.commit("pushed since the last run")
    result = relaunch(pod, RT_REPO_COMMIT=full_head(pod))
    assert "fetch" in git_commands(pod)
    assert result["commit"] == new and git(pod.repo_dir, "rev-parse", "--short", "HEAD") == new


def test_an_older_commit_than_the_pods_never_skips_the_fetch_or_goes_back(pod):
    first_run(pod)
    old = full_head(pod)
    pod.write_config("configs/smoke.yaml", max_steps=50)
    pod.commit("second")
    relaunch(pod)  # the pod's origin/main is now at "second"
    pod.write_config("configs/other.yaml")
    newest = pod.commit("third")
    result = relaunch(pod, RT_REPO_COMMIT=old)
    assert "fetch" in git_commands(pod)
    assert result["commit"] == newest, "what the fetch brings, never the older commit"


def test_without_the_commit_the_fetch_runs_as_before(pod):
    first_run(pod)
    relaunch(pod)
    assert git_commands(pod).count("fetch") == 1


def test_a_malformed_commit_is_a_clear_error_before_anything_starts(pod):
    run = pod.launch(RT_REPO_COMMIT="main")
    assert run.returncode == 2 and run.result is None
    assert "RT_REPO_COMMIT must be a full commit id" in run.error_lines[0]
    assert not pod.session_alive() and pod.state() is None


def test_launcher_env_sends_the_commit_only_when_known():
    assert "RT_REPO_COMMIT" not in runner_inputs()
    assert "RT_REPO_COMMIT" not in runner_inputs(commit=None)
    assert runner_inputs(commit="a" * 40)["RT_REPO_COMMIT"] == "a" * 40


def test_the_runners_run_policy_arrives_as_the_pods_settings():
    assert not {"RT_MAX_RECOVERIES", "RT_NOTIFY_URLS", "RT_STALL_MINUTES"} & set(runner_inputs())
    policy = RunPolicy(max_recoveries=5, budget_usd=2.5, auto_resume=False, stall_minutes=0, notify_urls="")
    env = runner_inputs(run_policy=policy)
    assert env["RT_NOTIFY_URLS"] == "", "set and empty: the pod's notify.json goes"
    s = read_settings(env)
    assert (s.max_recoveries, s.budget_usd, s.auto_resume, s.stall_minutes) == (5, 2.5, False, 0)
