"""One tracker run per training run (remote/podside/tracker.py): every attempt logs to the same W&B run,
the same MLflow run and the same TensorBoard directory.

The end-to-end test trains on the stand-in pod with the real clients (the `tracker` test extra): wandb
in offline mode and mlflow with a local file store, driven the way the Hugging Face callbacks drive them
(tests/fixtures/tracker_train.py), through a spot preemption and the pod's own relaunch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import uuid
from pathlib import Path

import pytest

from remote.podside import tracker
from tests.fixtures.pod_harness import PodSandbox, wait_for

TRAINER = Path(__file__).resolve().parents[1] / "fixtures" / "tracker_train.py"


# ---------------------------------------------------------------- the values
@pytest.mark.parametrize(
    ("run_id", "expected"),
    [
        ("baseline_whisper-20260101-120000", "baseline_whisper-20260101-120000"),
        ("r1", "r1"),
    ],
)
def test_a_run_id_in_wandbs_alphabet_is_kept(run_id, expected):
    assert tracker.wandb_run_id(run_id) == expected


def test_a_run_id_wandb_cannot_take_is_mapped_without_collisions():
    dotted, dashed = tracker.wandb_run_id("whisper.v2-1"), tracker.wandb_run_id("whisper-v2-1")
    assert dashed == "whisper-v2-1" and dotted != dashed
    assert dotted.startswith("whisper-v2-1-") and set(dotted) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    long = tracker.wandb_run_id("x" * 128)
    assert len(long) == tracker.WANDB_ID_MAX and long != tracker.wandb_run_id("x" * 127)


def test_what_the_user_set_is_never_overridden():
    assert tracker.defaults({}, "r1", "/b") == {
        "WANDB_RUN_ID": "r1",
        "WANDB_RESUME": "allow",
        "TENSORBOARD_LOGGING_DIR": "/b",
    }
    mine = {"WANDB_RUN_ID": "mine", "WANDB_RESUME": "never", "TENSORBOARD_LOGGING_DIR": "/mine"}
    assert tracker.defaults(mine, "r1", "/b") == {}
    assert not tracker.wants_mlflow_run({"MLFLOW_RUN_ID": "abc"})
    assert not tracker.wants_mlflow_run({"DISABLE_MLFLOW_INTEGRATION": "TRUE"})
    assert tracker.wants_mlflow_run({"MLFLOW_TRACKING_URI": "file:///x"})


def test_tensorboard_goes_to_the_configs_logging_dir_else_under_output_dir(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output_dir: checkpoints/x\nlogging_dir: logs/x\n")
    assert tracker.board_dir(str(cfg), "/repo", "/repo/checkpoints/x", "r1") == "/repo/logs/x"
    cfg.write_text("output_dir: checkpoints/x\n")
    assert tracker.board_dir(str(cfg), "/repo", "/repo/checkpoints/x", "r.1") == os.path.join(
        "/repo/checkpoints/x", "runs", tracker.wandb_run_id("r.1")
    )


def test_the_helpers_answer_is_its_last_json_line_and_a_failure_is_said():
    notes: list[str] = []
    assert (
        tracker.mlflow_run(lambda argv: 'INFO x\n{"mlflow": "abc", "created": true}\n', "py", "r1", notes.append)
        == "abc"
    )
    assert (
        tracker.mlflow_run(lambda argv: '{"mlflow": null, "why": "not installed"}\n', "py", "r1", notes.append) is None
    )
    assert notes == []
    assert tracker.mlflow_run(lambda argv: None, "py", "r1", notes.append) is None
    assert notes and "MLflow" in notes[0]


# ---------------------------------------------------------------- the real clients through a preemption
def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wandb_records(path: Path) -> list[bytes]:
    """The records of an offline run's .wandb file: W&B's LevelDB-style log (a 7-byte header, then
    32 KiB blocks of records, each a 4-byte checksum, a 2-byte length, a 1-byte type and its data)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    i, block, out, pending = 7, 32768, [], b""
    while i + 7 <= len(data):
        left = block - i % block
        if left < 7:
            i += left
            continue
        length, kind = int.from_bytes(data[i + 4 : i + 6], "little"), data[i + 6]
        if length == 0 and kind == 0:
            i += left
            continue
        chunk, i = data[i + 7 : i + 7 + length], i + 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
            pending = b""
    return out


def wandb_runs(root: Path) -> list[tuple[set[str], list[int]]]:
    """(run ids, train/global_step of every history row) per offline run directory, oldest first."""
    from wandb.proto import wandb_internal_pb2 as pb

    found = []
    for path in sorted(root.glob("wandb/offline-run-*/run-*.wandb")):
        ids, steps = set(), []
        for raw in wandb_records(path):
            rec = pb.Record()
            rec.ParseFromString(raw)
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                ids.add(rec.run.run_id)
            elif kind == "history":
                row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in rec.history.item}
                steps.append(int(row["train/global_step"]))
        found.append((ids, steps))
    return found


@pytest.fixture
def tracker_pod(tmp_path, venv_templates):
    pod = PodSandbox(tmp_path / "pod", session=f"rt-trk-{uuid.uuid4().hex[:10]}", venv_template=venv_templates["warm"])
    shutil.copy(TRAINER, pod.origin / "scripts" / "tracker_train.py")
    pod.write_config("configs/smoke.yaml", max_steps=24, save_steps=5, step_seconds=0.15)
    pod.commit("a run reported to W&B and MLflow")
    yield pod
    pod.cleanup()


def test_the_wandb_and_mlflow_runs_stay_one_run_through_a_preemption(tracker_pod, monkeypatch):
    pod = tracker_pod
    mlruns = pod.root / "mlruns"
    # The training venv is the image's; the tracker clients come from this test environment's site-packages.
    clients = {
        "PYTHONPATH": os.pathsep.join(site.getsitepackages()),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "MLFLOW_TRACKING_URI": mlruns.as_uri(),
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_EXPERIMENT_NAME": "whisper",
    }
    run = pod.launch(RT_RUN_ID="whisper.r1", RT_TRAIN_SCRIPT="scripts/tracker_train.py", RT_STOP_POD="0", **clients)
    assert run.returncode == 0, run.stderr
    checkpoint = pod.repo_dir / "checkpoints" / "smoke" / "checkpoint-10" / "trainer_state.json"
    wait_for(lambda: checkpoint.exists() or pod.state()["state"] == "failed", 90, "checkpoint-10")
    assert checkpoint.exists(), pod.log_text()[-3000:]
    wait_for(lambda: "step 12/24" in pod.log_text(), 30, "two steps past the checkpoint")
    train_pid = pod.state()["train_pid"]
    os.kill(pod.supervisor_pid(), signal.SIGTERM)  # the spot preemption: training gets it too
    pod.wait_state("preempted")
    wait_for(lambda: not alive(train_pid), 5, "training to end its runs within a preemption's 5 s")
    pod.kill_container()
    started = pod.start_container()  # the pod's own start relaunches the run, nobody attached
    assert started.returncode == 0, started.stderr
    wait_for(lambda: (pod.state() or {}).get("attempt") == 2, 60, f"attempt 2 ({pod.autoresume_log()!r})")
    state = pod.wait_finished(timeout=180)
    assert state["state"] == "succeeded" and state["attempt"] == 2, pod.log_text()[-3000:]

    attempts = [json.loads(line) for line in (pod.repo_dir / "checkpoints" / "tracker-attempts.jsonl").open()]
    assert [a["attempt"] for a in attempts] == ["1", "2"]
    assert attempts[1]["first_step"] == 11, "attempt 2 resumed from checkpoint-10"
    wandb_id = tracker.wandb_run_id("whisper.r1")
    assert {a["wandb_run"] for a in attempts} == {wandb_id}
    assert len({a["mlflow_run"] for a in attempts}) == 1
    assert {a["tensorboard"] for a in attempts} == {str(pod.repo_dir / "logs" / "smoke")}, "the config's logging_dir"

    # W&B: two offline pieces of one run (`wandb sync` uploads them into it), the steps continuous.
    runs = wandb_runs(pod.repo_dir)
    assert [ids for ids, _ in runs] == [{wandb_id}, {wandb_id}]
    first, second = runs[0][1], runs[1][1]
    assert first[:12] == list(range(1, 13)) and second == list(range(11, 25))
    assert sorted(set(first) | set(second)) == list(range(1, 25))

    # MLflow: one run in the experiment, found again by its tag, every step from 1 to 24 logged; the
    # steps after checkpoint-10 that attempt 1 had logged are logged again, nothing else twice.
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=mlruns.as_uri())
    experiment = client.get_experiment_by_name("whisper")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [attempts[0]["mlflow_run"]]
    assert runs[0].data.tags[tracker.MLFLOW_TAG] == "whisper.r1" and runs[0].info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, "loss"))
    redone = [s for s in set(steps) if steps.count(s) > 1]
    assert sorted(set(steps)) == list(range(1, 25)) and all(11 <= s <= first[-1] for s in redone)

    log = pod.log_text()
    assert f"WANDB_RUN_ID={wandb_id}" in log and f"MLFLOW_RUN_ID={runs[0].info.run_id}" in log
