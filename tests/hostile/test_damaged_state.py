"""Finding 11: a damaged file of the runner's own state (a run record, a host-key pin, the stop log)
is reported with the file to delete, never a traceback; nothing billable happens because of it."""

from __future__ import annotations

import json

import pytest

from runner import cli
from runner.exitcodes import ExitCode
from tests.fixtures.train_harness import train_env  # noqa: F401  (fixture)
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)

DAMAGED = [
    "{ not json",
    "[1, 2]",
    json.dumps({"run_id": "r1", "stack": "dev", "target": "pod", "target_name": "p", "config": "c", "attempts": 7}),
    json.dumps({"run_id": 5}),
    json.dumps(
        {
            "run_id": "r1",
            "stack": "dev",
            "target": "pod",
            "target_name": "p",
            "config": "c",
            "loss_points": [["x", "y"]],
        }
    ),
]


@pytest.mark.parametrize("text", DAMAGED)
def test_status_names_a_damaged_run_record_and_goes_on(pod_env, capfd, text):  # noqa: F811
    pod_env.add_pod("EXITED")
    runs = pod_env.state_dir / "dev" / "runs"
    runs.mkdir(parents=True)
    (runs / "r1.json").write_text(text)
    (pod_env.state_dir / "dev" / "last_run").write_text("r1\n")
    assert cli.main(["status"]) == 0
    out = capfd.readouterr().out
    assert f"{runs / 'r1.json'} is damaged" in out and "delete it" in out and "Traceback" not in out


def test_train_reusing_a_damaged_run_id_stops_before_anything_is_spent(train_env):  # noqa: F811
    env = train_env
    env.add_pod("EXITED")
    runs = env.state_dir / "dev" / "runs"
    runs.mkdir(parents=True)
    (runs / "r1.json").write_text(DAMAGED[0])
    res = env.run("train", "--config", "configs/smoke.yaml", "--run-id", "r1")
    assert res.code == ExitCode.USAGE, res.err
    assert f"{runs / 'r1.json'} is damaged" in res.err and "delete it" in res.err
    assert env.fake.billable_calls() == [] and env.pod.status == "EXITED"


def test_a_damaged_pin_is_named_with_the_file_to_delete(pod_env, capfd):  # noqa: F811
    pod_env.add_pod("RUNNING")
    store = pod_env.state_dir / "dev" / "known_hosts"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps({"version": 1, "pins": {pod_env.pod_id: {"key": "only half a pin"}}}))
    assert cli.main(["logs"]) == ExitCode.SSH
    err = capfd.readouterr().err
    assert f"the host key store {store} is damaged; delete it" in err and "Traceback" not in err
