"""`runner status` never contradicts what it showed: after a detached run, the result read from the pod
is kept on this machine, so once the pod has stopped itself status shows that result, not the record's
older "detached"; a result never seen is said to be unknown, not shown as something else."""

from __future__ import annotations

import json

from runner import cli
from runner.companions.status_seen import UNKNOWN_RESULT
from runner.train import run_record as runrecord
from runner.train.run_record import AttemptRecord, RunRecord
from tests.runner.test_status import seed_run
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)


def detached_record(pod_env) -> RunRecord:
    """What `runner train --detach` leaves on this machine: the run launched, its result not seen."""
    record = RunRecord(
        run_id="run-42",
        stack="dev",
        target="pod",
        target_name=pod_env.pod_id,
        config="configs/smoke.yaml",
        status="detached",
        attempts=[AttemptRecord(attempt=1, log_offset=0), AttemptRecord(attempt=2, log_offset=100)],
    )
    runrecord.save(pod_env.settings().paths, record)
    return record


def status_json(capsys) -> dict:
    assert cli.main(["status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["training"]


def test_the_result_seen_on_the_pod_is_shown_after_the_pod_stopped_itself(pod_env, capsys):
    pod_env.add_pod("RUNNING")
    detached_record(pod_env)
    seeded = seed_run(pod_env.workspace, state="succeeded")
    state_file = pod_env.workspace / ".runner" / "state.json"
    state_file.write_text(json.dumps({**seeded, "exit_code": 0, "ended_at": "2026-07-10T14:00:00Z"}))

    on_pod = status_json(capsys)
    assert (on_pod["source"], on_pod["state"], on_pod["exit_code"]) == ("pod", "succeeded", 0)
    assert on_pod["last_checkpoint"] == seeded["last_checkpoint"]

    pod_env.fake.client().stop_pod(pod_env.pod_id)  # the pod stops itself (the idle stop); no S3 key here
    after = status_json(capsys)
    assert after["source"] == "local" and after["note"] is None
    assert (after["run_id"], after["attempt"], after["state"], after["exit_code"]) == ("run-42", 2, "succeeded", 0)
    assert after["newest_checkpoint"] == seeded["last_checkpoint"] and after["ended_at"] == "2026-07-10T14:00:00Z"

    assert cli.main(["status"]) == 0
    text = capsys.readouterr().out
    assert "run-42, attempt 2, succeeded, exit code 0" in text and f"checkpoint: {seeded['last_checkpoint']}" in text
    assert "detached" not in text


def test_a_result_never_seen_is_said_to_be_unknown(pod_env, capsys):
    pod_env.add_pod("EXITED")
    detached_record(pod_env)
    training = status_json(capsys)
    assert (training["source"], training["state"], training["note"]) == ("local", "detached", UNKNOWN_RESULT)
    assert cli.main(["status"]) == 0
    assert f"result:     {UNKNOWN_RESULT}" in capsys.readouterr().out


def test_a_run_still_going_is_not_recorded_as_ended(pod_env, capsys):
    pod_env.add_pod("RUNNING")
    detached_record(pod_env)
    seed_run(pod_env.workspace, state="running")
    assert status_json(capsys)["state"] == "running"
    assert runrecord.load(pod_env.settings().paths, "run-42").status == "detached"
