"""End to end through the volume as the pod sees it: a data set uploaded through S3 (pod stopped, no
RunPod call) is what training on the stand-in pod reads; with the pod stopped again, `pull` brings back
the newest complete checkpoint training wrote (skipping a newer, cut-off one), `logs` prints the log,
`status` shows the run, and `tensorboard` serves the event files on this machine."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from runner import cli
from runner.exitcodes import ExitCode
from standins.runpod_s3 import RunPodS3
from tests.fixtures.pod_harness import git, wait_for
from tests.fixtures.train_harness import smoke_config, train_env  # noqa: F401  (fixture)

DATA_SCRIPT = '''\
"""Training that reads the data set from the volume, then trains like the smoke trainer."""
import runpy, sys
from pathlib import Path

cfg = dict(line.split(": ", 1) for line in Path(sys.argv[sys.argv.index("--config") + 1]).read_text().splitlines()
           if ": " in line)
out = Path(cfg["output_dir"])
out.mkdir(parents=True, exist_ok=True)
(out / "data_seen.txt").write_bytes(Path(cfg["data_file"]).read_bytes())
sys.argv[0] = "remote/smoke_train.py"
runpy.run_path("remote/smoke_train.py", run_name="__main__")
'''


@pytest.fixture
def volume(train_env, monkeypatch):  # noqa: F811
    with RunPodS3(volume_id="vol-xyz", volume_dir=train_env.workspace) as s3:  # SAMPLE_OUTPUTS' volume
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        yield s3


def _cut_off_checkpoint(ckpt: Path, step: int) -> None:
    ckpt.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
    (ckpt / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 100)  # cut off
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def test_data_through_s3_is_what_training_reads_and_pull_brings_the_checkpoint_back(
    train_env, volume, tmp_path, monkeypatch, capsys
):
    env = train_env
    env.add_pod("EXITED")
    data = os.urandom(300_000)
    (env.project / "data").mkdir()
    (env.project / "data" / "tokens.bin").write_bytes(data)

    # 1. Upload with the pod stopped: no RunPod call at all, the pod stays stopped.
    env.fake.clear_requests()
    assert env.run("sync").code == 0
    assert env.fake.requests == [] and env.pod.status == "EXITED"
    assert (env.workspace / "data" / "tokens.bin").read_bytes() == data

    # 2. Train on the stand-in pod: the trainer reads the uploaded file from its /workspace.
    (env.project / "scripts").mkdir()
    (env.project / "scripts" / "train_data.py").write_text(DATA_SCRIPT)
    env.write_config(
        "configs/data.yaml",
        smoke_config(max_steps=6, save_steps=3, logging_dir="tb/data")
        + f"data_file: {env.workspace}/data/tokens.bin\n",
        commit=False,
    )
    git(env.project, "add", "-A")
    git(env.project, "commit", "-q", "-m", "train on data")
    monkeypatch.setenv("TRAIN_SCRIPT", "scripts/train_data.py")
    res = env.run("train", "--config", "configs/data.yaml")
    assert res.code == 0, res.err
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to stop itself")
    out_dir = env.workspace / "project" / "checkpoints" / "smoke"
    assert (out_dir / "data_seen.txt").read_bytes() == data
    _cut_off_checkpoint(out_dir / "checkpoint-9", 9)  # a newer save killed half-way

    # 3. With the pod stopped: pull, logs, status, through S3; nothing billable, nothing started.
    env.fake.clear_requests()
    home = tmp_path / "home"
    res = env.run("pull", "--dest", str(home))
    assert res.code == 0, res.err
    assert "skipped incomplete checkpoint-9" in res.err
    got = home / "checkpoint-6"
    assert res.out.strip() == str(got)
    want = out_dir / "checkpoint-6"
    assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in want.iterdir())
    for p in want.iterdir():
        assert (got / p.name).read_bytes() == p.read_bytes()
    assert not (home / "checkpoint-9").exists() and not list(home.glob(".*"))  # no partial, no staging
    assert env.run("pull", "--dest", str(home)).code == 0  # again: nothing to do
    assert env.run("pull", "project/checkpoints/smoke/data_seen.txt", str(home)).code == 0
    assert (home / "data_seen.txt").read_bytes() == data
    assert env.fake.requests == []  # pull made no RunPod call

    res = env.run("logs", "-n", "3")
    assert res.code == 0, res.err
    assert res.out.splitlines() == env.log_text().splitlines()[-3:]
    assert "read through RunPod's S3 API" in res.err

    res = env.run("status", "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["training"]["source"] == "volume"
    assert report["training"]["state"] == "succeeded" and report["training"]["last_checkpoint"].endswith("checkpoint-6")
    assert report["log"]["tail"] == env.log_text().splitlines()[-10:]
    assert env.run("status").out.count("from the volume through S3") == 1
    assert env.fake.billable_calls() == [] and env.pod.status == "EXITED"


def test_tensorboard_on_a_stopped_pod_serves_the_event_files_here(train_env, volume, tmp_path, monkeypatch):
    env = train_env
    env.add_pod("EXITED")
    logdir = env.workspace / "project" / "tb" / "run1"
    logdir.mkdir(parents=True)
    (logdir / "events.out.tfevents.1.pod").write_bytes(b"event-bytes" * 100)
    (logdir / "checkpoint-5").mkdir()
    (logdir / "checkpoint-5" / "model.safetensors").write_bytes(b"w" * 1000)  # not fetched
    (env.workspace / ".runner").mkdir()
    (env.workspace / ".runner" / "state.json").write_text(
        json.dumps({"run_id": "r1", "config": "configs/tb.yaml", "repo_dir": str(env.workspace / "project")})
    )
    (env.workspace / "project" / "configs").mkdir(parents=True)
    (env.workspace / "project" / "configs" / "tb.yaml").write_text("output_dir: out\nlogging_dir: tb/run1\n")

    # Without tensorboard installed here: a clear error naming the install command.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    res = env.run("tensorboard")
    assert res.code == ExitCode.USAGE and "pip install tensorboard" in res.err

    # A stand-in `tensorboard` that records how it was started and exits.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    seen = tmp_path / "tb-argv.json"
    (bindir / "tensorboard").write_text(f'#!/bin/sh\nprintf \'%s\\n\' "$@" > {seen}\nls "$2" >> {seen}\n')
    (bindir / "tensorboard").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    res = env.run("tensorboard", "--port", "16006")
    assert res.code == 0, res.err
    argv = seen.read_text().splitlines()
    assert argv[:1] == ["--logdir"] and argv[2:7] == [
        "--host",
        "127.0.0.1",
        "--port",
        "16006",
        "events.out.tfevents.1.pod",
    ]
    assert Path(argv[1], "events.out.tfevents.1.pod").read_bytes() == b"event-bytes" * 100
    assert not Path(argv[1], "checkpoint-5").exists()
    assert "http://localhost:16006/" in res.out
    assert env.fake.billable_calls() == []
