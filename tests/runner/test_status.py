"""`runner status`: pod facts from the fake API, training state from the 'pod' (the test sshd) or,
when the pod is stopped, from the runs recorded on this machine. Never spends money."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from runner import cli
from runner.companions.status_report import LogReport, LossReport, PodReport, StatusReport, TrainingReport
from runner.timestamps import utc_now
from runner.train import run_record as runrecord
from runner.train.run_record import AttemptRecord, RunRecord
from tests.runner.test_sync import pod_env, pod_sshd  # noqa: F401  (fixtures)

TOP_KEYS = ["schema_version", "stack", "pod_id", "pod", "training", "log", "errors"]
POD_KEYS = [
    "state",
    "status",
    "last_status_change",
    "market",
    "gpu_type",
    "gpu_count",
    "cost_per_hr",
    "price_per_hr",
    "started_at",
    "uptime_s",
    "ssh",
    "data_center",
    "volume_id",
    "name",
    "gpus",
    "idle_stop",
]
TRAINING_KEYS = [
    "source",
    "run_id",
    "attempt",
    "state",
    "exit_code",
    "config",
    "output_dir",
    "started_at",
    "ended_at",
    "resume_from",
    "last_checkpoint",
    "message",
    "session_running",
    "newest_checkpoint",
    "skipped_checkpoints",
    "estimated_cost_usd",
    "record",
    "accounting",
    "loss",
    "billed",
    "note",
    "events",
]
LOSS_KEYS = ["source", "first_step", "last_step", "min", "min_step", "last", "points"]


def complete_checkpoint(output_dir, step: int) -> str:
    path = output_dir / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (path / "model.safetensors").write_bytes(b"\0" * 16)
    return str(path)


def seed_run(workspace, *, state: str = "running") -> dict:
    output_dir = workspace / "repo" / "checkpoints" / "smoke"
    complete_checkpoint(output_dir, 10)
    newest = complete_checkpoint(output_dir, 20)
    (output_dir / "checkpoint-30").mkdir()  # killed mid-save: no trainer_state.json
    runner_dir = workspace / ".runner"
    runner_dir.mkdir(parents=True)
    data = {
        "run_id": "run-42",
        "attempt": 2,
        "state": state,
        "exit_code": None,
        "config": "configs/smoke.yaml",
        "output_dir": str(output_dir),
        "resume_from": str(output_dir / "checkpoint-10"),
        "last_checkpoint": newest,
        "started_at": "2026-07-10T12:00:00Z",
        "ended_at": None,
        "log_offset": 0,
        "stop_requested": False,
        "repo_dir": str(workspace / "repo"),
    }
    (runner_dir / "state.json").write_text(json.dumps(data))
    logs = workspace / "logs"
    logs.mkdir()
    (logs / "current.log").write_text("".join(f"line {i}\n" for i in range(1, 16)) + "partial, no newline yet")
    return data


@pytest.fixture
def train_session(pod_env, monkeypatch):
    """A tmux session on the 'pod' standing in for the training session (unique name, removed after)."""
    name = f"rt-test-train-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("runner.remote.pod_view.TRAIN_SESSION", name)
    with pod_env.remote() as conn:
        # Marked like the launcher marks its sessions (tmux option @rt_owner), so inspect counts it.
        assert conn.run(
            f"tmux new-session -d -s {name} 'sleep 300' && tmux set-option -t ={name}: @rt_owner remote_train"
        ).ok
    yield name
    with pod_env.remote() as conn:
        conn.run(f"tmux kill-session -t ={name}")


def test_status_json_on_a_running_pod(pod_env, train_session, capsys):
    pod_env.add_pod("RUNNING")
    seeded = seed_run(pod_env.workspace)
    pod_env.fake.clear_requests()
    assert cli.main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    reads = [(r.method, r.path) for r in pod_env.fake.requests if r.path.startswith("/v2/pods")]
    assert reads == [("GET", f"/v2/pods/{pod_env.pod_id}")]  # one read: a running pod needs no history
    assert [r.operation for r in pod_env.fake.requests if r.operation == "pod"] == []
    assert list(report) == TOP_KEYS == list(StatusReport.__annotations__)
    assert list(report["pod"]) == POD_KEYS == list(PodReport.__annotations__)
    assert list(report["training"]) == list(TrainingReport.__annotations__)
    assert list(report["log"]) == list(LogReport.__annotations__)
    assert list(report["training"]) == TRAINING_KEYS
    pod = report["pod"]
    assert pod["state"] == "running" and pod["status"] == "RUNNING"
    assert pod["gpu_type"] == "NVIDIA GeForce RTX 4090" and pod["gpu_count"] == 1
    assert pod["market"] == "spot" and pod["cost_per_hr"] == pytest.approx(0.3)
    assert pod["uptime_s"] is not None and pod["uptime_s"] >= 0
    assert pod["ssh"] == {"host": pod_env.sshd.host, "port": pod_env.pod.ssh_port, "user": "root"}
    assert pod["idle_stop"] == {"after_min": 0, "watching": False, "busy": None, "idle_for_s": None}
    tr = report["training"]
    assert tr["source"] == "pod"
    assert (tr["run_id"], tr["attempt"], tr["state"], tr["config"]) == ("run-42", 2, "running", "configs/smoke.yaml")
    assert tr["session_running"] is True
    assert tr["accounting"] is None  # this machine has no record of run-42
    assert tr["newest_checkpoint"] == seeded["last_checkpoint"]
    assert [s.split(":")[0] for s in tr["skipped_checkpoints"]] == ["checkpoint-30"]
    assert report["log"]["tail"] == [f"line {i}" for i in range(6, 16)]
    assert report["log"]["path"] == str(pod_env.workspace / "logs" / "current.log")
    assert tr["loss"] is None  # no log_history, no loss in the log
    assert report["errors"] == []
    assert pod_env.fake.billable_calls() == []


def test_status_shows_the_loss_curve_from_the_newest_trainer_state(pod_env, train_session, capsys):
    pod_env.add_pod("RUNNING")
    seeded = seed_run(pod_env.workspace)
    history = [{"step": s, "loss": round(2.0 / s, 4), "epoch": s / 20} for s in range(2, 21, 2)]
    history.insert(3, {"step": 8, "eval_loss": 9.9})  # eval entries are not the loss
    state_file = pod_env.workspace / "repo" / "checkpoints" / "smoke" / "checkpoint-20" / "trainer_state.json"
    state_file.write_text(json.dumps({"global_step": 20, "log_history": history}))
    assert seeded["last_checkpoint"].endswith("checkpoint-20")

    assert cli.main(["status", "--json"]) == 0
    loss = json.loads(capsys.readouterr().out)["training"]["loss"]
    assert list(loss) == LOSS_KEYS == list(LossReport.__annotations__)
    assert loss["source"] == "trainer_state"
    assert loss["points"] == [[s, round(2.0 / s, 4)] for s in range(2, 21, 2)]
    assert (loss["first_step"], loss["last_step"], loss["min"], loss["min_step"], loss["last"]) == (2, 20, 0.1, 20, 0.1)

    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    chart = [line for line in out.splitlines() if "┤" in line or "└" in line]
    assert len(chart) == 5 and re.match(r"\s*loss +1 ┤█", chart[0]) and re.match(r"\s*0\.1 ┤█", chart[3]), out
    assert chart[-1].strip() == "└ steps 2-20 · min 0.1 at step 20 · last 0.1"
    assert out.rstrip().endswith("line 15")  # the log still comes last


def test_status_reads_the_loss_from_the_log_without_a_trainer_state(pod_env, train_session, capsys):
    pod_env.add_pod("RUNNING")
    seed_run(pod_env.workspace)
    log = pod_env.workspace / "logs" / "current.log"
    log.write_text("".join(f"step {s}/9 loss {1.0 / s:.4f}\n" for s in range(1, 10)))
    assert cli.main(["status", "--json"]) == 0
    loss = json.loads(capsys.readouterr().out)["training"]["loss"]
    assert loss["source"] == "log" and [p[0] for p in loss["points"]] == list(range(2, 10))  # the 1st line may be cut


def test_status_text_on_a_running_pod(pod_env, train_session, capsys):
    pod_env.add_pod("RUNNING")
    seed_run(pod_env.workspace)
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "pod:        running (RUNNING" in out
    assert "$0.300/hour now" in out
    assert f"root@{pod_env.sshd.host} -p {pod_env.pod.ssh_port}" in out
    assert "run:        run-42, attempt 2, running" in out
    assert "tmux:       running" in out
    assert "checkpoint-20" in out
    assert out.rstrip().endswith("line 15")


def test_status_shows_that_a_pod_could_not_stop_itself(pod_env, train_session, capsys):
    """A detached run's end when RunPod refuses the pod's own key: the pod keeps billing, and says so."""
    pod_env.add_pod("RUNNING")
    data = seed_run(pod_env.workspace, state="succeeded")
    data.update(exit_code=0, message="could not stop the pod (see the log); it is still billing")
    (pod_env.workspace / ".runner" / "state.json").write_text(json.dumps(data))
    assert cli.main(["status"]) == 0
    assert "note:       could not stop the pod (see the log); it is still billing" in capsys.readouterr().out
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["message"].endswith("it is still billing")


def test_status_json_on_a_stopped_pod_uses_the_local_run_record(pod_env, capsys):
    pod_env.add_pod("EXITED")
    settings = pod_env.settings()
    ckpt = "/workspace/repo/checkpoints/x/checkpoint-500"
    record = RunRecord(
        run_id="run-7",
        stack="dev",
        target="pod",
        target_name=pod_env.pod_id,
        config="configs/x.yaml",
        status="succeeded",
        exit_code=0,
        last_checkpoint=ckpt,
        estimated_cost_usd=1.25,
        attempts=[
            AttemptRecord(attempt=1, log_offset=0, started_at="2026-07-10T10:00:00Z"),
            AttemptRecord(attempt=2, log_offset=900, ended_at="2026-07-10T12:00:00Z"),
        ],
    )
    runrecord.save(settings.paths, record)
    pod_env.fake.clear_requests()

    assert cli.main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report) == TOP_KEYS and list(report["pod"]) == POD_KEYS
    pod = report["pod"]
    assert pod["state"] == "stopped_by_user" and pod["status"] == "EXITED"
    assert pod["cost_per_hr"] == 0.0 and pod["price_per_hr"] == pytest.approx(0.35)
    assert pod["ssh"] is None and pod["uptime_s"] is None
    tr = report["training"]
    assert tr["source"] == "local" and tr["record"] == str(settings.paths.run_file("run-7"))
    assert (tr["run_id"], tr["attempt"], tr["state"], tr["exit_code"]) == ("run-7", 2, "succeeded", 0)
    assert (tr["started_at"], tr["ended_at"]) == ("2026-07-10T10:00:00Z", "2026-07-10T12:00:00Z")
    assert tr["newest_checkpoint"] == ckpt and tr["estimated_cost_usd"] == 1.25
    acc = tr["accounting"]  # recorded here: the recovery accounting
    assert (acc["attempts"], acc["preemptions"], acc["recoveries"], acc["steps_lost"]) == (2, 0, 0, 0)
    assert acc["estimated_cost_usd"] == 1.25 and [a["attempt"] for a in acc["per_attempt"]] == [1, 2]
    assert report["log"] is None
    assert tr["loss"] is None  # the record holds no loss points
    assert pod_env.fake.billable_calls() == []
    assert pod_env.pod.status == "EXITED"
    # Only reads: REST GETs and the GraphQL pod query; no start, stop or resume of any kind.
    calls = [(r.method, r.path, r.operation, r.action) for r in pod_env.fake.requests]
    assert calls and all(m == "GET" or op == "pod" for m, _, op, _ in calls), calls
    assert all(action is None for *_, action in calls), calls


def test_status_on_stopped_pod_without_runs_and_preempted_text(pod_env, capsys):
    pod_env.add_pod("EXITED", last_status_change="Outbid: Wed Jul 29 2026 21:51:59 GMT+0000")
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "preempted (outbid; stopped)" in out
    assert "no compute charge while stopped" in out
    assert "no run known" in out
    assert pod_env.fake.billable_calls() == []


def test_status_of_a_gone_pod(pod_env, capsys):
    pod_id = pod_env.add_pod("RUNNING")
    pod_env.fake.client().terminate_pod(pod_id)
    assert cli.main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pod"]["state"] == "gone" and report["pod"]["status"] is None
    # No run known: every training key is still there, null (accounting included).
    assert list(report["training"]) == TRAINING_KEYS and report["training"]["accounting"] is None
    assert report["training"]["source"] is None


def test_status_reports_an_ssh_failure_but_still_shows_the_pod(pod_env, capsys, monkeypatch):
    pod_env.add_pod("RUNNING")
    # A pin for another key under this pod id: the runner must refuse the pod's key.
    from runner.remote.hostkeys import HostKey, HostKeyStore

    settings = pod_env.settings()
    store = HostKeyStore(settings.paths.ensure().known_hosts)
    other = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
    store.check(pod_env.pod_id, other, started_at="2999-01-01T00:00:00Z")
    assert cli.main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pod"]["state"] == "running"
    assert report["training"]["source"] is None
    assert len(report["errors"]) == 1 and "host key" in report["errors"][0]


def test_status_shows_the_idle_stop_watching_a_running_pod(pod_env, capsys, tmp_path):
    import os
    import signal
    import subprocess

    from remote.podside.bundle import idle_watch_script
    from standins.preemption import processes_under
    from standins.waiting import wait_for

    pod_env.add_pod("RUNNING", idle_stop_minutes=20)
    env = {**os.environ, "RT_IDLE_SSH_PORTS": ",".join(map(str, pod_env.sshd.ports))}
    subprocess.run(
        ["bash", "-s"], input=idle_watch_script(1200, str(pod_env.workspace)).encode(), env=env, check=True, timeout=30
    )
    try:
        wait_for(lambda: (pod_env.workspace / ".runner" / "idlewatch.json").exists(), 20, "the watcher's first check")
        assert cli.main(["status", "--json"]) == 0
        idle = json.loads(capsys.readouterr().out)["pod"]["idle_stop"]
        assert idle["after_min"] == 20 and idle["watching"] is True and isinstance(idle["busy"], list)
        assert cli.main(["status"]) == 0
        line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("  idle stop:"))
        assert "after 20 min with no training, SSH session or tunnel" in line
        assert "busy now:" in line or "idle for" in line
    finally:
        for pid in processes_under(tmp_path):
            os.kill(pid, signal.SIGKILL)


def test_status_shows_each_gpus_use_now_and_not_reported_when_runpod_leaves_it_out(pod_env, train_session, capsys):
    pod_env.add_pod("RUNNING")
    seed_run(pod_env.workspace)
    pod_env.fake.set_gpu_use(pod_env.pod_id, [(31, 62), (88, 70)])
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pod"]["gpus"] == [
        {"util": 31, "memory_util": 62},
        {"util": 88, "memory_util": 70},
    ]
    assert cli.main(["status"]) == 0
    assert "GPU use:    GPU 0 31% (memory 62%), GPU 1 88% (memory 70%)" in capsys.readouterr().out
    pod_env.fake.hide_runtime(pod_env.pod_id)  # the answer has no `runtime`: never read as 0%
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pod"]["gpus"] is None
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "GPU use:    not reported by RunPod's API" in out and " 0%" not in out


def test_status_shows_runpods_billed_amount_next_to_the_estimate(pod_env, capsys):
    pod_env.add_pod("RUNNING")
    settings = pod_env.settings()
    record = RunRecord(
        run_id="run-8",
        stack="dev",
        target="pod",
        target_name=pod_env.pod_id,
        config="configs/x.yaml",
        pod_id=pod_env.pod_id,
        status="succeeded",
        estimated_cost_usd=0.0001,
        attempts=[AttemptRecord(attempt=1, log_offset=0, started_at=utc_now(), pod_id=pod_env.pod_id)],
    )
    runrecord.save(settings.paths, record)
    pod_env.fake.backdate_billing(pod_env.pod_id, 600)  # it ran ten minutes ...
    pod_env.fake.client().stop_pod(pod_env.pod_id)  # ... and the run is over: what it cost stays put
    assert cli.main(["status", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["training"]["billed"]
    assert found["pods"] == [pod_env.pod_id] and found["since"] == record.attempts[0].started_at[:13] + ":00:00Z"
    expected = pod_env.fake.client().pod_billing(pod_env.pod_id, start=found["since"]).total_usd
    assert found["usd"] == pytest.approx(expected, abs=1e-4) and found["usd"] > 0
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "cost:       about $0.00 (compute, estimated)" in out
    assert f"billed:     ${found['usd']:.4f} billed by RunPod (pod {pod_env.pod_id}, hourly from" in out
    pod_env.fake.inject("rest:GET /v2/billing/pods", "auth", count=10)  # a key without billing's right
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["billed"] is None
    assert cli.main(["status"]) == 0
    assert (
        "billed:     not reported by RunPod's billing (the cost above is the estimate alone)" in capsys.readouterr().out
    )
