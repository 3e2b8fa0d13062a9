"""The pod's event log (remote/podside/eventlog.py) and the run's spec (runspec.py), in-process."""

from __future__ import annotations

import json
import os

import pytest

from remote.podside import eventlog, notify, runspec
from remote.podside.contract import (
    Event,
    EventKey,
    HoldKey,
    StallKey,
    VolumePaths,
    event_id,
    is_held,
    is_unfinished,
    recoveries,
)
from remote.podside.inputs import read_settings
from tests.fixtures.pod_harness import WebhookSink, wait_for


@pytest.fixture
def paths(tmp_path) -> VolumePaths:
    p = VolumePaths(str(tmp_path))
    os.makedirs(p.runner_dir)
    os.makedirs(p.log_dir)
    return p


def lines(paths: VolumePaths, run_id: str) -> list[dict]:
    with open(paths.events_file(run_id)) as fh:
        return [json.loads(line) for line in fh]


def test_an_event_is_recorded_once_with_every_key(paths):
    first = eventlog.emit(paths, Event.FINISHED, "r1", 2, pod="pod-1", step=40, checkpoint="/x/checkpoint-40")
    assert first is not None and list(first) == list(EventKey.ALL)
    assert first["id"] == "r1:2:finished" and first["source"] == "pod" and first["time"].endswith("Z")
    assert eventlog.emit(paths, Event.FINISHED, "r1", 2) is None, "a repeat is a no-op"
    assert lines(paths, "r1") == [first]
    assert os.path.exists(paths.sent_marker("r1:2:finished"))


def test_a_recurring_event_takes_the_next_id(paths):
    ids = [eventlog.emit(paths, Event.IDLE_STOPPED, "r1", 1, recurring=True)["id"] for _ in range(3)]
    assert ids == ["r1:1:idle-stopped", "r1:1:idle-stopped:2", "r1:1:idle-stopped:3"]
    assert event_id("r1", None, "gave-up") == "r1:0:gave-up"


def test_no_run_no_event_and_an_unsafe_run_id_names_no_file(paths):
    assert eventlog.emit(paths, Event.IDLE_STOPPED, None, None) is None
    assert eventlog.emit(paths, Event.FAILED, "../../etc/x", 1) is None
    assert not os.path.exists(os.path.join(paths.runner_dir, "events"))


def test_a_line_stays_one_write_under_pipe_buf(paths):
    event = eventlog.emit(paths, Event.FAILED, "r1", 1, message="x" * 100_000, checkpoint="/c" * 3000)
    raw = open(paths.events_file("r1"), "rb").read()
    assert raw.count(b"\n") == 1 and len(raw) <= eventlog.LINE_LIMIT
    assert lines(paths, "r1")[0]["id"] == event["id"]


def test_a_volume_that_refuses_the_marker_does_not_silence_the_notification(paths):
    sink = WebhookSink()
    try:
        notify.write_urls(paths.notify_file, [sink.url()])
        for blocked in ("sent", "events"):  # a file where a directory must be: every write there fails
            open(os.path.join(paths.runner_dir, blocked), "w").close()
        logged: list[str] = []
        event = eventlog.emit(paths, Event.STALLED, "r1", 1, log=logged.append)
        assert event is not None and any("sending anyway" in line for line in logged)
        assert any("could not append to the event log" in line for line in logged)
        wait_for(lambda: [e["id"] for e in sink.events()] == ["r1:1:stalled"], 10, "the notification")
    finally:
        sink.close()


def test_held_finished_and_counted_as_the_design_says():
    hold = {HoldKey.RUN_ID: "r1", HoldKey.ATTEMPT: 2, HoldKey.AT: "t", HoldKey.REASON: "stop"}
    assert is_held(hold, "r1", 2) and is_held(hold, "r1", 1)
    assert not is_held(hold, "r1", 3), "an attempt launched after the hold is not held"
    assert not is_held(hold, "r2", 2) and not is_held(None, "r1", 2)
    assert is_held({**hold, HoldKey.ATTEMPT: None}, "r1", 9)
    assert is_unfinished({"state": "preempted"}, supervisor_alive=False)
    assert is_unfinished({"state": "running"}, supervisor_alive=False)
    assert not is_unfinished({"state": "running"}, supervisor_alive=True)
    for finished in ("succeeded", "failed", "stalled", "stopped"):
        assert not is_unfinished({"state": finished}, supervisor_alive=False)
    assert not is_unfinished(None, supervisor_alive=False)
    assert [recoveries({"attempt": n}) for n in (1, 2, 4)] == [0, 1, 3] and recoveries(None) == 0


def test_the_spec_launches_the_same_run_again_without_credentials():
    env = {
        "RT_WORKSPACE": "/ws",
        "RT_REPO_URL": "https://oauth2:ghp_SECRET@github.com/org/repo.git",
        "RT_REPO_BRANCH": "dev",
        "RT_CONFIG": "configs/x.yaml",
        "RT_LAUNCHER": "torchrun",
        "RT_GPU_COUNT": "2",
        "RT_STOP_POD": "0",
        "RT_IDLE_STOP_MINUTES": "20",
        "RT_MAX_RECOVERIES": "5",
        "RT_BUDGET_USD": "7.5",
        "RT_AUTO_RESUME": "0",
        "RT_STALL_MINUTES": "60",
        "RT_STALL_ACTION": "notify",
        "RT_ACK_WAIT": "30",
    }
    s = read_settings(env)
    spec = runspec.build(s, "r1", 1, "a" * 40, "2026-01-01T00:00:00Z")
    assert "ghp_SECRET" not in json.dumps(spec)
    assert spec["inputs"]["RT_REPO_URL"] == "https://github.com/org/repo.git"
    assert (spec["max_recoveries"], spec["budget_usd"], spec["auto_resume"]) == (5, 7.5, False)
    assert spec["stall"] == {
        StallKey.MINUTES: 60,
        StallKey.GPU_UTIL_BELOW: 5,
        StallKey.GPU_WINDOW_MINUTES: 30,
        StallKey.ACTION: "notify",
    }
    again = read_settings(runspec.relaunch_inputs(spec))
    same = ("workspace", "branch", "repo_dir", "config", "launcher", "gpu_count_text", "stop_pod", "idle_stop_minutes")
    assert [getattr(again, k) for k in same] == [getattr(s, k) for k in same]
    policies = ("max_recoveries", "budget_usd", "auto_resume", "stall_minutes", "stall_gpu_util", "stall_action")
    assert [getattr(again, k) for k in policies] == [getattr(s, k) for k in policies]
    assert (again.run_id, again.commit, again.ack_wait) == ("r1", "a" * 40, 0.0)
    assert runspec.without_credentials("git@github.com:org/repo.git") == "git@github.com:org/repo.git"


def test_the_spec_is_private(tmp_path):
    paths = VolumePaths(str(tmp_path))
    s = read_settings({"RT_WORKSPACE": str(tmp_path), "RT_REPO_URL": "/src/repo", "RT_CONFIG": "c.yaml"})
    runspec.write(paths, runspec.build(s, "r1", 1, None, "t"))
    assert os.stat(paths.spec_file("r1")).st_mode & 0o777 == 0o600
    assert runspec.read(paths, "r1")["run_id"] == "r1"
    assert runspec.read(paths, "../r1") is None and runspec.read(paths, None) is None
