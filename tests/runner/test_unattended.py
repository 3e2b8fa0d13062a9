"""The run finishes without you (issue 25's "done when"), on the project's stand-ins: the fake RunPod API, the
real sshd as the pod, the stub pulumi, a webhook on 127.0.0.1.

`runner train --detach` runs as a process of its own and its whole process group is killed; a preemption
follows. Nothing of the runner is attached any more: the background watcher (or `runner watch --once` by
hand) resumes the pod through RunPod's API, the pod's own start command (run here as RunPod runs it at a
container start) relaunches the run from its newest complete checkpoint, training finishes, the pod stops
itself, and the webhook has heard started, preempted, recovering, recovered and finished exactly once each.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from runner.watcher import background
from standins.container_starts import ContainerStarts
from standins.runpod_s3 import RunPodS3
from tests.fixtures.pod_harness import WebhookSink
from tests.fixtures.recovery_harness import attempts_in_log, fast_recovery, preempt, steps_of
from tests.fixtures.train_harness import ROOT, smoke_config, train_env, wait_for  # noqa: F401

LONG = "configs/long.yaml"
STORY = ("started", "preempted", "recovering", "recovered", "finished")


def container_starts(env) -> ContainerStarts:
    return ContainerStarts(env.fake, env.pod_id, env.workspace, {"TMUX_TMPDIR": str(env.tmux_tmpdir)})


def runner_train_processes(run_id: str) -> list[int]:
    """Live `runner train` processes of this run (zombies count as gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        words = [w.decode(errors="replace") for w in argv]
        if state != "Z" and "runner" in words and "train" in words and run_id in words:
            found.append(int(entry.name))
    return found


def detach_and_kill(env, run_id: str, extra_env: dict[str, str]) -> None:
    """`runner train --detach` as its own process (group); once it launched the run, the group is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "train", "--config", LONG, "--run-id", run_id, "--detach"],
        cwd=env.project,
        env={**os.environ, "PYTHONPATH": str(ROOT), **extra_env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        env.wait_log("step 3/", timeout=60)  # launched: training runs on the pod
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it had already exited (--detach returns once the run is launched)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert runner_train_processes(run_id) == []


@pytest.fixture
def env(train_env, monkeypatch):
    fast_recovery(monkeypatch)
    monkeypatch.delenv(background.OPT_OUT, raising=False)  # the background watcher is what is tested
    monkeypatch.setenv("WATCH_POLL_SECONDS", "0.3")
    monkeypatch.setenv("WATCH_CONFIRM_SECONDS", "0.5")
    train_env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.05))
    yield train_env
    background.stop(paths_of(train_env))


@pytest.fixture
def sink():
    server = WebhookSink()
    yield server
    server.close()


def paths_of(env):
    from runner.paths import StatePaths

    return StatePaths(env.state_dir, "dev")


def resumes(env) -> list:
    return [r for r in env.fake.billable_calls() if r.operation == "podBidResume"]


def assert_the_story(env, sink, run_id: str) -> None:
    events = sink.wait_events(*STORY, timeout=60)
    counts = Counter(e["event"] for e in events if e["run_id"] == run_id)
    assert {name: counts[name] for name in STORY} == dict.fromkeys(STORY, 1), counts
    by_name = {e["event"]: e for e in events}
    assert by_name["started"]["attempt"] == 1 and by_name["recovered"]["attempt"] == 2
    assert by_name["preempted"]["source"] == by_name["recovering"]["source"] == "watcher"
    assert {by_name[n]["source"] for n in ("started", "recovered", "finished")} == {"pod"}
    assert by_name["recovered"]["checkpoint"].endswith("checkpoint-10")
    assert all(e["pod_id"] == env.pod_id for e in events)
    assert sink.url() not in json.dumps(events)  # the secret URL is never in what is sent


def assert_resumed_from_the_newest_checkpoint(env) -> None:
    header, *lines = attempts_in_log(env)[1]
    assert "attempt=2 " in header and "checkpoint-10" in header, header
    assert steps_of(lines) == list(range(11, 41))


def test_a_detached_run_survives_its_runner_and_a_preemption_with_nobody_attached(env, sink):
    env.add_pod("RUNNING")
    env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.1))
    with container_starts(env) as starts:
        detach_and_kill(env, "alone", {"NOTIFY_URL": sink.url()})
        assert background.running_pid(paths_of(env))  # the detached run left a watcher, in its own session
        env.wait_log("saved checkpoint-10")
        preempt(env)

        env.wait_state("succeeded", timeout=120)
        assert runner_train_processes("alone") == []
        wait_for(lambda: env.pod.status == "EXITED", 60, "the pod to stop itself")
        assert starts.runs == 1  # one container start: the resume
    assert len(resumes(env)) == 1
    assert_resumed_from_the_newest_checkpoint(env)
    assert_the_story(env, sink, "alone")
    decided = (env.workspace / "logs" / "autoresume.log").read_text()
    assert "resuming run alone: attempt 1 was preempted" in decided and '"status": "started"' in decided


@pytest.fixture
def volume_s3(env, monkeypatch):
    """RunPod's S3 API over the stand-in pod's volume: the pod's events readable with the pod stopped."""
    with RunPodS3(volume_id="vol-xyz", volume_dir=env.workspace) as s3:  # SAMPLE_OUTPUTS' volume
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        yield s3


def test_the_same_with_watch_once_run_by_hand(env, sink, monkeypatch, volume_s3):
    monkeypatch.setenv(background.OPT_OUT, "0")  # no background watcher: the passes are made by hand
    monkeypatch.setenv("NOTIFY_URL", sink.url())
    env.add_pod("RUNNING")
    env.write_config(LONG, smoke_config(max_steps=40, save_steps=5, step_seconds=0.1))
    with container_starts(env) as starts:
        detach_and_kill(env, "by-hand", {"NOTIFY_URL": sink.url(), background.OPT_OUT: "0"})
        assert background.running_pid(paths_of(env)) is None
        env.wait_log("saved checkpoint-10")
        preempt(env)

        def one_pass() -> str:
            res = env.run("watch", "--once")
            assert res.code == 0, res.err
            return res.err

        wait_for(lambda: "recovered and relaunched (run by-hand)" in one_pass(), 60, "a pass that recovers")
        env.wait_state("succeeded", timeout=120)
        assert runner_train_processes("by-hand") == []
        wait_for(lambda: env.pod.status == "EXITED", 60, "the pod to stop itself")
        assert starts.runs == 1
    assert len(resumes(env)) == 1
    assert_resumed_from_the_newest_checkpoint(env)
    assert_the_story(env, sink, "by-hand")
    timeline = env.run("events", "--run", "by-hand")  # the pod is stopped: its events come through S3
    assert timeline.code == 0, timeline.err
    names = [line.split()[1] for line in timeline.out.splitlines()]
    assert names == list(STORY), timeline.out
    as_json = [json.loads(line) for line in env.run("events", "--run", "by-hand", "--json").out.splitlines()]
    assert [e["event"] for e in as_json] == list(STORY) and sink.url() not in timeline.out + timeline.err
    status = env.run("status", "--json")  # the same records: the latest events of the run
    assert [e["event"] for e in json.loads(status.out)["training"]["events"]] == list(STORY), status.err


def test_the_stacks_policies_and_the_stall_flag_reach_the_runs_spec(env):
    """autoResume and stallMinutes from the stack's outputs, --stall-minutes over them: what the pod keeps
    with the run (runs/<id>/spec.json) for a relaunch with nobody attached."""
    env.add_pod("RUNNING", outputs={"auto_resume": False, "stall_minutes": 30})

    def spec_of(run_id: str) -> dict:
        return json.loads((env.workspace / ".runner" / "runs" / run_id / "spec.json").read_text())

    assert env.run("train", "--config", LONG, "--run-id", "policy", "--detach", "--no-watch").code == 0
    spec = spec_of("policy")
    assert spec["auto_resume"] is False and spec["stall"]["minutes"] == 30 and spec["max_recoveries"] == 3
    env.wait_state("succeeded", timeout=60)
    res = env.run("train", "--config", LONG, "--run-id", "flagged", "--detach", "--no-watch", "--stall-minutes", "0")
    assert res.code == 0, res.err
    assert spec_of("flagged")["stall"]["minutes"] == 0
