"""`runner pull` in its other cases: over SFTP from a running pod when S3 is not set up, resuming an
interrupted download, a stopped pod without S3 (a clear error, nothing started), bad paths, and
logs/status without S3 on a stopped pod (as before, plus one note)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from runner import cli
from runner.exitcodes import ExitCode
from runner.volume.transfer import partial_path

WEIGHTS = 4000


def _checkpoint(ckpt: Path, step: int, *, whole: bool = True) -> None:
    ckpt.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [WEIGHTS // 4], "data_offsets": [0, WEIGHTS]}}).encode()
    data = bytes(range(256)) * (WEIGHTS // 256) + b"\1" * (WEIGHTS % 256)
    body = struct.pack("<Q", len(header)) + header + (data if whole else data[:100])
    (ckpt / "model.safetensors").write_bytes(body)
    (ckpt / "optimizer.pt").write_bytes(b"opt" * 1000)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def _run_state(workspace: Path, output_dir: Path) -> None:
    (workspace / ".runner").mkdir(exist_ok=True)
    (workspace / ".runner" / "state.json").write_text(
        json.dumps(
            {
                "run_id": "r1",
                "attempt": 1,
                "state": "succeeded",
                "output_dir": str(output_dir),
                "last_checkpoint": str(output_dir / "checkpoint-20"),
            }
        )
    )


def test_pull_over_ssh_from_a_running_pod_without_s3(s3_env, tmp_path, capfd):
    s3_env.start("RUNNING", keys=False)
    ws = s3_env.pod_env.workspace
    out = ws / "outputs" / "run1"
    _checkpoint(out / "checkpoint-10", 10)
    _checkpoint(out / "checkpoint-20", 20)
    _checkpoint(out / "checkpoint-30", 30, whole=False)  # the pod was preempted mid-save
    _run_state(ws, out)
    dest = tmp_path / "home"
    assert cli.main(["pull", "--dest", str(dest)]) == 0
    cap = capfd.readouterr()
    assert "over SSH from the running pod" in cap.err and "skipped incomplete checkpoint-30" in cap.err
    assert cap.err.count("RunPod's S3 API") == 1  # once: what S3 would give
    for name in ("model.safetensors", "optimizer.pt", "trainer_state.json"):
        assert (dest / "checkpoint-20" / name).read_bytes() == (out / "checkpoint-20" / name).read_bytes()
    assert not (dest / "checkpoint-30").exists() and not list(dest.glob(".*"))
    assert s3_env.fake.billable_calls() == []


def test_interrupted_s3_download_resumes_from_its_partial_file(s3_env, tmp_path, capfd):
    s3 = s3_env.start("EXITED")
    ws = s3_env.pod_env.workspace
    out = ws / "outputs" / "run1"
    _checkpoint(out / "checkpoint-20", 20)
    _run_state(ws, out)
    dest = tmp_path / "home"
    # A previous pull got 1,000 bytes of the weights before it was stopped.
    staged = dest / ".checkpoint-20.rtpull" / "model.safetensors"
    staged.parent.mkdir(parents=True)
    partial_path(staged).write_bytes((out / "checkpoint-20" / "model.safetensors").read_bytes()[:1000])
    s3.requests.clear()
    assert cli.main(["pull", "--dest", str(dest)]) == 0
    capfd.readouterr()
    assert (dest / "checkpoint-20" / "model.safetensors").read_bytes() == (
        out / "checkpoint-20" / "model.safetensors"
    ).read_bytes()
    gets = [r for r in s3.ops("GetObject") if r.key.endswith("model.safetensors")]
    assert [r.status for r in gets] == [206]  # a ranged GET from byte 1000 on


def test_stopped_pod_without_s3_is_a_clear_error_and_nothing_starts(s3_env, tmp_path, capfd):
    s3_env.start("EXITED", keys=False)
    assert cli.main(["pull", "--dest", str(tmp_path / "h")]) == ExitCode.POD
    err = capfd.readouterr().err
    assert "RUNPOD_S3_ACCESS_KEY" in err and "needs the running pod" in err
    assert s3_env.fake.billable_calls() == [] and s3_env.pod_env.pod.status == "EXITED"


def test_missing_path_and_no_run_are_usage_errors(s3_env, tmp_path, capfd):
    s3_env.start("EXITED")
    assert cli.main(["pull", "outputs/nothing-here", str(tmp_path)]) == ExitCode.USAGE
    assert "is not on the volume" in capfd.readouterr().err
    assert cli.main(["pull", "/etc/passwd", str(tmp_path)]) == ExitCode.USAGE
    assert "not on the network volume" in capfd.readouterr().err
    assert cli.main(["pull", "--dest", str(tmp_path)]) == ExitCode.USAGE
    assert "no run known" in capfd.readouterr().err


def test_logs_and_status_of_a_stopped_pod_without_s3_are_as_before_with_one_note(s3_env, capfd):
    s3_env.start("EXITED", keys=False)
    assert cli.main(["logs"]) == ExitCode.POD
    err = capfd.readouterr().err
    # the error says what S3 would give and how to set it up; no note before it saying the same
    assert "readable only while the pod runs" in err and err.count("RunPod's S3 API") == 1
    assert "create an S3 API key in the RunPod console" in err and "without starting the pod" not in err
    assert cli.main(["status"]) == 0
    cap = capfd.readouterr()
    assert "no run known" in cap.out and cap.err.count("without starting the pod") == 1


def test_pull_the_log_with_the_pod_stopped(s3_env, tmp_path, capfd):
    s3_env.start("EXITED")
    log = s3_env.pod_env.workspace / "logs" / "current.log"
    log.parent.mkdir(parents=True)
    log.write_text("===== header =====\nstep 1/2 loss 1.0\nstep 2/2 loss 0.5\n")
    s3_env.fake.clear_requests()
    assert cli.main(["pull", "--log", str(tmp_path)]) == 0
    assert capfd.readouterr().out.strip() == str(tmp_path / "current.log")
    assert (tmp_path / "current.log").read_text() == log.read_text()
    assert s3_env.fake.requests == []
