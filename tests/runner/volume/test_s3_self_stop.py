"""With GraphQL retired, RunPod no longer says why a pod stopped. A spot pod that stopped itself (a
detached run's end, the idle stop) while this machine was not watching would read as preempted; its
marker on the volume (<workspace>/.runner/self_stop.json, written before its stop call) settles it,
read through the S3 API with no pod (runner/pod/volume_marker.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from remote.podside.contract import VolumePaths
from standins.runpod_s3 import RunPodS3
from tests.fixtures.train_harness import train_env  # noqa: F401  (fixture)


@pytest.fixture
def stopped_spot_pod(train_env, monkeypatch):  # noqa: F811
    env = train_env
    env.add_pod("RUNNING")  # started: RunPod gave it a startedAt
    env.fake.retire_graphql()  # no status history from here on
    with RunPodS3(volume_id="vol-xyz", volume_dir=env.workspace) as s3:  # SAMPLE_OUTPUTS' volume
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        yield env


def write_marker(env, at: datetime, reason: str) -> None:
    path = VolumePaths(str(env.workspace)).self_stop_marker
    (env.workspace / ".runner").mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        json.dump({"run_id": "r1", "attempt": 1, "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": reason}, fh)


def stop_as_the_pod_would(env) -> None:
    env.fake.state.stop(env.pod, api="rest")


def state(env) -> str:
    res = env.run("status", "--json")
    assert res.code == 0, res.err
    return json.loads(res.out)["pod"]["state"]


@pytest.mark.parametrize("reason", ["idle", "run-ended"])
def test_a_pod_that_stopped_itself_is_not_taken_for_preempted(stopped_spot_pod, reason):
    env = stopped_spot_pod
    write_marker(env, datetime.now(timezone.utc) + timedelta(seconds=1), reason)
    stop_as_the_pod_would(env)
    assert state(env) == "stopped_by_user"
    assert env.fake.billable_calls() == []


def test_without_a_marker_a_stopped_spot_pod_was_interrupted(stopped_spot_pod):
    env = stopped_spot_pod
    stop_as_the_pod_would(env)
    assert state(env) == "preempted"


def test_a_marker_from_an_earlier_start_does_not_count(stopped_spot_pod):
    env = stopped_spot_pod
    write_marker(env, datetime.now(timezone.utc) - timedelta(hours=2), "run-ended")
    stop_as_the_pod_would(env)
    assert state(env) == "preempted"
