"""The pod side run for real: `bash -s` with bundle.launcher_script() on stdin (the shim
remote/remote_train.sh + the embedded program remote/podside/), real git, tmux and venvs.

Each test gets a PodSandbox (tests/fixtures/pod_harness.py): a workspace dir playing the network volume, a
local git repo playing the training repo (scripts/train.py = the smoke trainer), a recording
`runpodctl` stand-in, a fake rp_environment, and its own tmux server + session name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from remote.podside.contract import BANNER, NONE, Header, StopMethod, VolumePaths, parse_footer, parse_header
from tests.fixtures.pod_harness import (
    MARKER,
    POD_API_KEY,
    POD_ID,
    PodSandbox,
    StopApiServer,
    git,
    make_wheel,
    real_python,
    wait_for,
    weights_bytes,
)

UTC_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def make_pod(tmp_path, venv_templates):
    made = []

    def make(venv: str = "warm", **kwargs) -> PodSandbox:
        kwargs.setdefault("venv_template", venv_templates[venv])
        pod = PodSandbox(tmp_path / f"pod{len(made)}", session=f"rt-test-{uuid.uuid4().hex[:10]}", **kwargs)
        made.append(pod)
        return pod

    yield make
    for pod in made:
        pod.cleanup()


@pytest.fixture
def pod(make_pod) -> PodSandbox:
    return make_pod()


def _banner_lines(log: str) -> list[str]:
    """Lines (split on \\n only: a \\r-redrawn progress bar must not hide a banner) starting with =====."""
    return [line for line in log.split("\n") if line.startswith(BANNER)]


def headers(log: str) -> list[Header]:
    """The attempt headers, each alone on its line, parsed with the contract's parser."""
    found = [h for h in map(parse_header, _banner_lines(log)) if h]
    for h in found:
        assert UTC_TIME_RE.fullmatch(h.time), h
        assert h.line() in log.split("\n"), "a header is a whole line"
    return found


def footers(log: str) -> list[tuple]:
    """(run, attempt, state, exit, checkpoint) of each footer line, as the log spells them."""
    found = [f for f in map(parse_footer, _banner_lines(log)) if f]
    for f in found:
        assert UTC_TIME_RE.fullmatch(f.time), f
        assert f.line() in log.split("\n"), "a footer is a whole line"
    return [
        (f.run_id, str(f.attempt), f.state, NONE if f.exit_code is None else str(f.exit_code), f.checkpoint or NONE)
        for f in found
    ]


def _pid_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def raw_log(pod: PodSandbox) -> str:
    """The log as written (log_text() reads in text mode, which turns a lone \\r into \\n)."""
    return pod.log_file.read_bytes().decode()


def attempt_log(pod: PodSandbox, offset: int) -> str:
    return pod.log_file.read_bytes()[offset:].decode()


def assert_no_secret(pod: PodSandbox, secret: str = POD_API_KEY) -> None:
    assert secret not in pod.log_text()
    assert secret not in pod.state_file.read_text()


def assert_nothing_launched(pod: PodSandbox, run) -> None:
    assert run.returncode != 0
    assert run.result is None, "no RT_RESULT line on errors"
    assert run.error_lines, f"expected an 'error: ...' line on stderr, got {run.stderr!r}"
    assert not pod.session_alive()
    assert headers(pod.log_text()) == []
    assert pod.state() is None


# --- the happy path -----------------------------------------------------------------------------


def test_first_run_clones_creates_venv_trains_and_stops_pod(make_pod):
    # (The session fixture already ran this path with the real `python3 -m venv`; here the venv
    # module is stood in by a copy so the test stays fast.)
    pod = make_pod(venv="cold")
    run = pod.launch(RT_RUN_ID="run-1")

    assert run.returncode == 0, run.stderr
    res = run.result
    assert res["status"] == "started"
    assert res["run_id"] == "run-1" and res["attempt"] == 1
    assert res["log"] == str(pod.log_file) and res["log_offset"] == 0
    assert res["state_file"] == str(pod.state_file)
    assert res["resume_from"] is None and res["skipped_checkpoints"] == []
    assert res["output_dir"] == str(pod.repo_dir / "checkpoints" / "smoke")
    assert res["commit"] == git(pod.origin, "rev-parse", "--short", "HEAD")
    assert res["launcher"] == "python" and res["gpu_count"] == 1

    state = pod.wait_finished()
    assert state["state"] == "succeeded" and state["exit_code"] == 0
    assert state["last_checkpoint"] == str(pod.repo_dir / "checkpoints" / "smoke" / "checkpoint-40")
    assert state["stop_requested"] is True and state["stop_method"] == "runpodctl pod stop"
    assert state["ended_at"] and state["started_at"] and state["log_offset"] == 0
    assert state["config"] == "configs/smoke.yaml" and state["run_id"] == "run-1"

    log = pod.log_text()
    (header,) = headers(log)
    assert (header.run_id, header.attempt, header.config, header.resume_from) == (
        "run-1",
        1,
        "configs/smoke.yaml",
        None,
    )
    assert log.startswith(header.line() + "\n")
    assert "step 1/40 loss" in log and "step 40/40 loss" in log
    assert footers(log) == [("run-1", "1", "succeeded", "0", state["last_checkpoint"])]
    assert log.index("step 40/40") < log.index("end state=succeeded")
    assert "venv: creating" in log and "pip install" in log
    assert (pod.records / "venv-created").read_text() == f"{pod.repo_dir / 'venv'}\n"
    assert (pod.repo_dir / "venv" / "bin" / "python").exists()
    assert (pod.repo_dir / "venv" / MARKER).is_file()
    assert len(pod.pip_calls()) == 1
    assert (pod.repo_dir / "logs" / "smoke" / "metrics.jsonl").is_file(), "training ran in the repo dir"

    calls = pod.runpodctl_calls()
    assert [c["argv"] for c in calls] == [["pod", "stop", POD_ID]]
    assert calls[0]["has_key"], "runpodctl gets the pod key from the environment"
    assert_no_secret(pod)


def test_warm_rerun_fast_forwards_resumes_and_installs_nothing(make_pod):
    pod = make_pod(venv="cold")
    first = pod.launch(RT_RUN_ID="r")
    assert first.returncode == 0, first.stderr
    pod.wait_finished()
    assert len(pod.pip_calls()) == 1
    size_after_first = pod.log_file.stat().st_size

    pod.write_config("configs/smoke.yaml", max_steps=50)
    new_commit = pod.commit("train longer")
    second = pod.launch(RT_RUN_ID="r")
    assert second.returncode == 0, second.stderr
    res = second.result
    assert res["attempt"] == 2
    assert res["log_offset"] == size_after_first
    assert res["resume_from"] == str(pod.repo_dir / "checkpoints" / "smoke" / "checkpoint-40")
    assert res["commit"] == new_commit
    assert git(pod.repo_dir, "rev-parse", "--short", "HEAD") == new_commit

    state = pod.wait_finished()
    assert state["state"] == "succeeded" and state["attempt"] == 2
    assert state["last_checkpoint"].endswith("checkpoint-50")
    section = attempt_log(pod, res["log_offset"])
    (header,) = headers(section)
    assert section.startswith(header.line() + "\n")
    assert header.attempt == 2 and header.resume_from == res["resume_from"]
    assert "resumed from checkpoint-40" in section and "step 41/50" in section
    assert "step 1/50" not in section
    assert "requirements unchanged" in section
    assert len(pod.pip_calls()) == 1, "a warm start must not run pip"
    assert (pod.records / "venv-created").read_text().count("\n") == 1, "the venv is reused"
    assert len(pod.runpodctl_calls()) == 2


def test_new_run_id_starts_at_attempt_one(pod):
    assert pod.launch(RT_RUN_ID="a").returncode == 0
    pod.wait_finished()
    run = pod.launch(RT_RUN_ID="b")
    assert run.result["attempt"] == 1 and run.result["run_id"] == "b"
    pod.wait_finished()


def test_generated_run_id_when_none_given(pod):
    run = pod.launch()
    assert run.returncode == 0, run.stderr
    assert run.result["run_id"]
    assert pod.wait_finished()["run_id"] == run.result["run_id"]


def test_changed_requirements_are_installed_once(pod):
    pod.launch()
    pod.wait_finished()
    assert pod.pip_calls() == [], "the venv left by an earlier run is current"

    wheel = make_wheel(pod.origin / "wheels")
    (pod.origin / "requirements.txt").write_text(f"./wheels/{wheel.name}\n")
    pod.commit("add a dependency")
    assert pod.launch().returncode == 0
    section_start = pod.state()["log_offset"]
    assert pod.wait_finished()["state"] == "succeeded"
    assert len(pod.pip_calls()) == 1
    assert "requirements.txt or Python changed" in attempt_log(pod, section_start)
    probe = subprocess.run(
        [str(pod.repo_dir / "venv" / "bin" / "python"), "-c", "import rtdemo; print(rtdemo.VERSION)"],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "0.1", probe.stderr

    assert pod.launch().returncode == 0
    assert pod.wait_finished()["state"] == "succeeded"
    assert len(pod.pip_calls()) == 1, "unchanged requirements: no second install"


def test_a_venv_broken_by_an_image_change_is_rebuilt_and_reinstalled(make_pod):
    pod = make_pod(venv="cold")
    pod.launch()
    pod.wait_finished()
    assert len(pod.pip_calls()) == 1
    venv_python = pod.repo_dir / "venv" / "bin" / "python"
    venv_python.unlink()
    venv_python.symlink_to("/nonexistent/python3.9")  # the old image's interpreter is gone

    run = pod.launch()
    assert run.returncode == 0, run.stderr
    assert pod.wait_finished()["state"] == "succeeded"
    section = attempt_log(pod, run.result["log_offset"])
    assert "does not work with" in section and "recreating" in section
    assert (pod.records / "venv-created").read_text().count("\n") == 2
    assert len(pod.pip_calls()) == 2


def test_failed_pip_install_is_reported_and_pod_still_stops(pod):
    (pod.origin / "requirements.txt").write_text("./wheels/missing-0.1-py3-none-any.whl\n")
    pod.commit("broken requirement")
    run = pod.launch()
    assert run.returncode == 0, run.stderr

    state = pod.wait_finished()
    assert state["state"] == "failed"
    assert state["exit_code"] not in (None, 0)
    assert "pip install" in state["message"]
    assert "step 1/" not in pod.log_text(), "training must not start after a failed install"
    assert "missing-0.1-py3-none-any.whl" in pod.log_text(), "pip's own error is in the log"
    assert [c["argv"] for c in pod.runpodctl_calls()] == [["pod", "stop", POD_ID]]
    assert state["stop_requested"] is True
    assert len(pod.pip_calls()) == 1

    # The failed install is not remembered as done: the next launch tries again.
    assert pod.launch().returncode == 0
    assert pod.wait_finished()["state"] == "failed"
    assert len(pod.pip_calls()) == 2


# --- checkpoints ------------------------------------------------------------------------------


def _checkpoint(
    out: Path, name: str, *, step=None, state_text=None, files=("model.safetensors",), index=None, truncate=()
) -> Path:
    """A checkpoint folder as the Trainer writes it: real weights files first (safetensors, or torch's
    zip format for .bin), the shard index, trainer_state.json last. `truncate`: files cut short."""
    d = out / name
    d.mkdir(parents=True)
    for f in files:
        data = weights_bytes(f)
        (d / f).write_bytes(data[: len(data) - 5] if f in truncate else data)
    if index is not None:
        (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    if state_text is not None:
        (d / "trainer_state.json").write_text(state_text)
    elif step is not None:
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return d


def test_resume_uses_newest_complete_checkpoint_and_reports_partial_ones(pod):
    out = pod.root / "outputs"
    _checkpoint(out, "checkpoint-5", step=5)
    _checkpoint(out, "checkpoint-6", step=6, files=("adapter_model.safetensors",))
    shards = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    _checkpoint(out, "checkpoint-7", step=7, files=tuple(shards.values()), index=shards)
    _checkpoint(out, "checkpoint-16", step=16, files=(shards["a"],), index=shards)
    _checkpoint(out, "checkpoint-17", step=17, files=())
    _checkpoint(out, "checkpoint-18", state_text='{"global_step": 18, "log_hist')
    _checkpoint(out, "checkpoint-19", step=18)
    _checkpoint(out, "checkpoint-20")  # killed between the weights and trainer_state.json
    _checkpoint(out, "checkpoint-21", step=21, truncate=("model.safetensors",))  # weights cut short
    _checkpoint(out, "checkpoint-22", step=22, files=("pytorch_model.bin",), truncate=("pytorch_model.bin",))
    _checkpoint(out, "checkpoint-23", step=23, files=tuple(shards.values()), index=shards, truncate=(shards["b"],))
    _checkpoint(out, "checkpoint-abc", step=99)
    _checkpoint(out, "tmp-checkpoint-30", step=30)
    (out / "checkpoint-40").write_text("a file, not a checkpoint")

    pod.write_config("configs/smoke.yaml", output_dir=str(out), max_steps=9, save_steps=100)
    pod.commit("absolute output dir")
    run = pod.launch()
    assert run.returncode == 0, run.stderr
    res = run.result
    assert res["output_dir"] == str(out)
    assert res["resume_from"] == str(out / "checkpoint-7")
    skipped = res["skipped_checkpoints"]
    assert [s.split(":")[0] for s in skipped] == [f"checkpoint-{n}" for n in (23, 22, 21, 20, 19, 18, 17, 16)]
    assert "shard" in skipped[0] and shards["b"] in skipped[0] and "truncated" in skipped[0]
    assert "pytorch_model.bin truncated" in skipped[1]
    assert "model.safetensors truncated" in skipped[2]
    skipped = skipped[3:]
    assert "trainer_state.json missing" in skipped[0]
    assert "does not match" in skipped[1]
    assert "unreadable" in skipped[2]
    assert "no model weights" in skipped[3]
    assert "shard" in skipped[4]
    for name in ("checkpoint-20", "checkpoint-16"):
        assert f"warning: skipped incomplete checkpoint {name}" in run.stderr

    state = pod.wait_finished()
    assert state["state"] == "succeeded" and state["resume_from"] == str(out / "checkpoint-7")
    log = pod.log_text()
    assert headers(log)[0].resume_from == str(out / "checkpoint-7")
    assert "skipped incomplete checkpoint checkpoint-20" in log
    assert "resumed from checkpoint-7" in log and "step 8/9" in log and "step 7/9" not in log
    assert state["last_checkpoint"] == str(out / "checkpoint-9")


def test_sigterm_records_preemption_and_a_partial_save_is_skipped_next_time(pod):
    pod.write_config("configs/smoke.yaml", max_steps=100000, step_seconds=0.01, save_seconds=1.0)
    pod.commit("slow saves")
    run = pod.launch(RT_RUN_ID="spot")
    assert run.returncode == 0, run.stderr
    out = pod.repo_dir / "checkpoints" / "smoke"
    # Strike while checkpoint-20 is half written: weights there, trainer_state.json not yet.
    wait_for(lambda: (out / "checkpoint-20" / "model.safetensors").exists(), 60, "checkpoint-20 save to begin")
    assert (out / "checkpoint-10" / "trainer_state.json").exists()
    assert not (out / "checkpoint-20" / "trainer_state.json").exists()
    supervisor = pod.supervisor_pid()
    assert pod.state()["supervisor_pid"] == supervisor
    signalled = time.monotonic()
    os.kill(supervisor, signal.SIGTERM)
    # RunPod sends SIGKILL about 5 s after SIGTERM: the record, the footer and the exit must come first.
    wait_for(
        lambda: (pod.state() or {}).get("state") == "preempted" and "end state=preempted" in pod.log_text(),
        5.0,
        "state preempted and the footer",
        interval=0.005,
    )
    recorded = time.monotonic() - signalled
    wait_for(
        lambda: not pod.processes_running(str(pod.repo_dir / "scripts" / "train.py")) and not _pid_alive(supervisor),
        5.0,
        "training and the supervisor to exit",
        interval=0.005,
    )
    exited = time.monotonic() - signalled
    assert recorded < 5.0 and exited < 5.0, (recorded, exited)

    state = pod.wait_finished()
    assert state["state"] == "preempted"
    assert state["last_checkpoint"] == str(out / "checkpoint-10")
    assert state["exit_code"] is None and state["stop_requested"] is False
    assert pod.runpodctl_calls() == [], "a preempted pod must not be stopped by the launcher"
    wait_for(
        lambda: not pod.processes_running(str(pod.repo_dir / "scripts" / "train.py")),
        10,
        "training to receive the forwarded SIGTERM and exit",
    )
    assert not (out / "checkpoint-20" / "trainer_state.json").exists()
    assert "SIGTERM received" in pod.log_text()
    assert footers(pod.log_text()) == [("spot", "1", "preempted", "none", str(out / "checkpoint-10"))]

    again = pod.launch(RT_RUN_ID="spot")
    assert again.returncode == 0, again.stderr
    res = again.result
    assert res["attempt"] == 2
    assert res["resume_from"] == str(out / "checkpoint-10")
    assert res["skipped_checkpoints"] == ["checkpoint-20: trainer_state.json missing (killed mid-save?)"]
    pod.wait_log("resumed from checkpoint-10")
    pod.wait_log("step 11/")


# --- already running ----------------------------------------------------------------------------


def test_second_launch_while_training_starts_nothing(pod):
    pod.write_config("configs/smoke.yaml", max_steps=100000, step_seconds=0.02)
    pod.commit("long run")
    first = pod.launch(RT_RUN_ID="long")
    assert first.returncode == 0, first.stderr
    pod.wait_state("running")
    pod.wait_log("step 2/")
    head_before = git(pod.repo_dir, "rev-parse", "HEAD")
    pod.write_config("configs/other.yaml")
    pod.commit("a commit that must not be pulled under a running training")

    second = pod.launch(RT_RUN_ID="another")
    assert second.returncode == 0, second.stderr
    res = second.result
    assert res["status"] == "already-running"
    for key in ("run_id", "attempt", "log_offset", "log", "state_file"):
        assert res[key] == first.result[key], key
    assert git(pod.repo_dir, "rev-parse", "HEAD") == head_before
    assert len(headers(pod.log_text())) == 1
    trainers = pod.processes_running(str(pod.repo_dir / "scripts" / "train.py"))
    assert len(trainers) == 1, trainers
    assert pod.state()["state"] == "running" and pod.state()["run_id"] == "long"


def test_foreign_tmux_session_with_the_same_name_is_an_error(pod):
    assert pod.tmux("new-session", "-d", "-s", pod.session, "sleep 600").returncode == 0
    run = pod.launch()
    assert run.returncode != 0 and run.result is None
    assert "was not started by remote_train.sh" in run.error_lines[0]
    assert pod.state() is None


# --- failures ---------------------------------------------------------------------------------


def test_failing_training_records_exit_code_and_stops_pod(pod):
    pod.write_config("configs/smoke.yaml", fail_at_step=15)
    pod.commit("fails")
    run = pod.launch()
    assert run.returncode == 0, run.stderr

    state = pod.wait_finished()
    assert state["state"] == "failed" and state["exit_code"] == 3
    assert state["message"] == "training exited with code 3"
    assert state["last_checkpoint"].endswith("checkpoint-10")
    assert state["stop_requested"] is True
    assert [c["argv"] for c in pod.runpodctl_calls()] == [["pod", "stop", POD_ID]]
    assert "simulated failure at step 15" in pod.log_text()
    assert footers(pod.log_text()) == [(state["run_id"], "1", "failed", "3", state["last_checkpoint"])]


def test_missing_config_is_a_clear_error_before_anything_starts(pod):
    run = pod.launch(RT_CONFIG="configs/nope.yaml")
    assert_nothing_launched(pod, run)
    assert "config configs/nope.yaml not found" in run.error_lines[0]


def test_config_without_output_dir_is_a_clear_error(pod):
    (pod.origin / "configs" / "bad.yaml").write_text("max_steps: 3\nmodel:\n  output_dir: nested/is/not/it\n")
    pod.commit("bad config")
    run = pod.launch(RT_CONFIG="configs/bad.yaml")
    assert_nothing_launched(pod, run)
    assert "has no top-level output_dir" in run.error_lines[0]


@pytest.mark.parametrize("with_pyyaml", [True, False], ids=["pyyaml", "fallback-parser"])
def test_output_dir_comes_from_any_config(pod, with_pyyaml):
    (pod.origin / "configs" / "exp.yaml").write_text(
        "# experiment\nmodel:\n  output_dir: wrong/nested\n"
        'output_dir: "checkpoints/exp one"  # quoted, with a comment\n'
        "audio_dirs:\n  - data/audio_0\nmax_steps: 3\nsave_steps: 2\n"
    )
    pod.commit("exp")
    env = {}
    if not with_pyyaml:
        # python3 -S: no site-packages, so `import yaml` fails and the small parser is used.
        (pod.bin / "python3").write_text(f'#!/bin/sh\nexec {real_python()} -S "$@"\n')
        (pod.bin / "python3").chmod(0o755)
        probe = subprocess.run([str(pod.bin / "python3"), "-c", "import yaml"], capture_output=True)
        assert probe.returncode != 0
    run = pod.launch(RT_CONFIG="configs/exp.yaml", **env)
    assert run.returncode == 0, run.stderr
    assert run.result["output_dir"] == str(pod.repo_dir / "checkpoints" / "exp one")
    state = pod.wait_finished()
    assert state["last_checkpoint"] == str(pod.repo_dir / "checkpoints" / "exp one" / "checkpoint-3")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"RT_CONFIG": None}, "RT_CONFIG is required"),
        ({"RT_REPO_URL": None}, "RT_REPO_URL is required"),
        ({"RT_SESSION": "a;b"}, "RT_SESSION must contain only"),
        ({"RT_LAUNCHER": "mpirun"}, "RT_LAUNCHER must be"),
        ({"RT_STOP_POD": "yes"}, "RT_STOP_POD must be"),
        ({"RT_CODE_SOURCE": "rsync"}, "RT_CODE_SOURCE must be"),
        ({"RT_GPU_COUNT": "two"}, "GPU count must be a positive integer"),
        ({"RT_REPO_BRANCH": "bad branch"}, "not a valid git branch name"),
        ({"RT_REPO_BRANCH": "no-such-branch"}, "git clone of"),
        ({"RT_TRAIN_SCRIPT": "scripts/missing.py"}, "training script"),
        ({"RT_PYTHON": "python-does-not-exist"}, "RT_PYTHON"),
        ({"RT_WORKSPACE": "relative/ws"}, "RT_WORKSPACE must be an absolute path"),
        ({"RT_CONFIG": "configs/a\nb.yaml"}, "must not contain a line break"),
        ({"RT_ACTION": "deploy"}, "RT_ACTION must be"),
        ({"RT_ACK_WAIT": "soon"}, "RT_ACK_WAIT must be a number of seconds"),
    ],
)
def test_bad_input_is_rejected_before_launch(pod, overrides, message):
    run = pod.launch(**overrides)
    assert_nothing_launched(pod, run)
    assert message in run.error_lines[0], run.stderr


# --- the pod's checkout -----------------------------------------------------------------------


def test_local_changes_on_the_pod_are_never_clobbered(pod):
    pod.launch()
    pod.wait_finished()
    head = git(pod.repo_dir, "rev-parse", "HEAD")
    edited = pod.repo_dir / "scripts" / "train.py"
    edited.write_text(edited.read_text() + "\n# hotfix made on the pod\n")
    pod.write_config("configs/smoke.yaml", max_steps=50)
    pod.commit("upstream change")
    log_before = pod.log_text()
    state_before = pod.state()

    run = pod.launch()
    assert run.returncode != 0 and run.result is None
    assert "has local changes" in run.error_lines[0] and "scripts/train.py" in run.error_lines[0]
    assert edited.read_text().endswith("# hotfix made on the pod\n")
    assert git(pod.repo_dir, "rev-parse", "HEAD") == head
    assert pod.log_text() == log_before and pod.state() == state_before
    assert not pod.session_alive()


def test_commits_made_on_the_pod_that_diverged_stop_with_a_clear_error(pod):
    pod.launch()
    pod.wait_finished()
    (pod.repo_dir / "NOTES.md").write_text("pod-side note\n")
    git(pod.repo_dir, "add", "NOTES.md")
    git(pod.repo_dir, "commit", "-q", "-m", "committed on the pod")
    pod_head = git(pod.repo_dir, "rev-parse", "HEAD")
    pod.write_config("configs/smoke.yaml", max_steps=50)
    pod.commit("upstream change")

    run = pod.launch()
    assert run.returncode != 0 and run.result is None
    assert "cannot be fast-forwarded" in run.error_lines[0]
    assert git(pod.repo_dir, "rev-parse", "HEAD") == pod_head


def test_switching_branch_between_runs(pod):
    pod.launch()
    pod.wait_finished()
    git(pod.origin, "checkout", "-q", "-b", "experiment")
    pod.write_config("configs/smoke.yaml", max_steps=5, output_dir="checkpoints/exp")
    exp_commit = pod.commit("experiment branch")
    run = pod.launch(RT_REPO_BRANCH="experiment")
    assert run.returncode == 0, run.stderr
    assert run.result["commit"] == exp_commit
    assert git(pod.repo_dir, "rev-parse", "--abbrev-ref", "HEAD") == "experiment"
    assert pod.wait_finished()["last_checkpoint"].endswith("checkpoints/exp/checkpoint-5")


def test_pushed_code_source_skips_git(pod):
    tree = pod.workspace / "pushed-tree"
    shutil.copytree(pod.origin, tree, ignore=shutil.ignore_patterns(".git"))
    run = pod.launch(RT_CODE_SOURCE="pushed", RT_REPO_URL=None, RT_REPO_DIR=str(tree))
    assert run.returncode == 0, run.stderr
    assert run.result["commit"] is None and run.result["repo_dir"] == str(tree)
    assert pod.wait_finished()["state"] == "succeeded"
    assert (tree / "checkpoints" / "smoke" / "checkpoint-40" / "trainer_state.json").exists()


def test_pushed_code_source_without_the_tree_is_an_error(pod):
    run = pod.launch(RT_CODE_SOURCE="pushed", RT_REPO_URL=None, RT_REPO_DIR=str(pod.workspace / "absent"))
    assert_nothing_launched(pod, run)
    assert "does not exist" in run.error_lines[0]


# --- stopping the pod -------------------------------------------------------------------------


def test_stop_falls_back_to_the_legacy_runpodctl_syntax(pod):
    pod.install_runpodctl("legacy-only")
    pod.launch()
    state = pod.wait_finished()
    assert [c["argv"] for c in pod.runpodctl_calls()] == [["pod", "stop", POD_ID], ["stop", "pod", POD_ID]]
    assert state["stop_method"] == "runpodctl stop pod" and state["stop_requested"] is True


def test_stop_uses_rest_v2_first_with_the_pods_key_never_on_a_command_line(pod):
    # runpodctl is installed but not needed: REST v2 comes first (runpodctl releases still call REST v1).
    hostile_key = 'rpa_"quoted"\\back$(touch pwned-key)'
    pod.write_rp_env_raw(f"export RUNPOD_POD_ID={POD_ID}\nexport RUNPOD_API_KEY='{hostile_key}'\n")
    curl_log = pod.install_curl_recorder()
    marker = Path(VolumePaths(str(pod.workspace)).self_stop_marker)
    server = StopApiServer(hostile_key, observe=lambda: json.loads(marker.read_text()) if marker.exists() else None)
    try:
        run = pod.launch(RUNPOD_REST_URL=server.url, RT_RUN_ID="rest-first")
        state = pod.wait_finished()
    finally:
        server.close()
    assert state["stop_method"] == StopMethod.REST == "REST v2" and state["stop_requested"] is True
    assert server.requests == [
        {
            "path": f"/v2/pods/{POD_ID}/action",
            "body": '{"action":"stop"}',
            "authorized": True,
            "content_type": "application/json",
        }
    ]
    assert pod.runpodctl_calls() == [], "runpodctl is only the fallback"
    assert not curl_log.exists(), "no curl: the request is made in-process, the key never on a command line"
    # The marker was on the volume before the request reached the API.
    (seen,) = server.observed
    assert seen["run_id"] == "rest-first" and seen["attempt"] == run.result["attempt"]
    assert UTC_TIME_RE.fullmatch(seen["at"])
    assert json.loads(marker.read_text()) == seen
    assert_no_secret(pod, hostile_key)
    assert not list(pod.root.rglob("pwned*"))


def test_runpodctl_is_the_fallback_when_rest_v2_refuses(pod):
    server = StopApiServer("another key")  # answers 401: not retried, runpodctl next
    try:
        pod.launch(RUNPOD_REST_URL=server.url)
        state = pod.wait_finished()
    finally:
        server.close()
    assert [r["authorized"] for r in server.requests] == [False]
    assert [c["argv"] for c in pod.runpodctl_calls()] == [["pod", "stop", POD_ID]]
    assert state["stop_method"] == "runpodctl pod stop" and state["stop_requested"] is True
    assert "stop: REST v2 answered HTTP 401; trying runpodctl" in pod.log_text()
    assert (pod.workspace / ".runner" / "self_stop.json").is_file()


def test_a_pod_key_in_the_environment_stays_off_the_volume_and_out_of_training(pod):
    pod.write_rp_env_raw(f"export RUNPOD_POD_ID={POD_ID}\n")  # the key only in the session's env
    pod.remove_runpodctl()
    pod.write_config("configs/smoke.yaml", max_steps=60, step_seconds=0.02)
    pod.commit("a bit longer")
    server = StopApiServer(POD_API_KEY)
    try:
        run = pod.launch(RUNPOD_API_KEY=POD_API_KEY, RUNPOD_REST_URL=server.url)
        assert run.returncode == 0, run.stderr
        state = pod.wait_state("running")
        environ = Path(f"/proc/{state['train_pid']}/environ").read_bytes()
        assert b"RT_RUN_ID=" in environ and POD_API_KEY.encode() not in environ
        runner_dir = pod.workspace / ".runner"
        plan = runner_dir / "supervise.json"
        assert plan.stat().st_mode & 0o777 == 0o600
        assert "RT_RUN_ID" in json.loads(plan.read_text())["env"]
        for f in runner_dir.rglob("*"):  # the run's spec, events and markers too
            if f.is_file():
                assert POD_API_KEY.encode() not in f.read_bytes(), f
        state = pod.wait_finished()
    finally:
        server.close()
    assert state["stop_method"] == "REST v2"
    assert [r["authorized"] for r in server.requests] == [True]
    assert_no_secret(pod)


def test_stop_via_rest_v2_needs_neither_runpodctl_nor_curl(pod):
    pod.remove_runpodctl()
    server = StopApiServer(POD_API_KEY)
    try:
        pod.launch(RUNPOD_REST_URL=server.url, path_env=pod.path_without("curl", "runpodctl"))
        state = pod.wait_finished()
    finally:
        server.close()
    assert state["stop_method"] == "REST v2"
    assert [(r["path"], r["authorized"]) for r in server.requests] == [(f"/v2/pods/{POD_ID}/action", True)]
    assert_no_secret(pod)


def test_a_failed_stop_is_recorded_loudly(pod):
    pod.install_runpodctl("fail")
    pod.launch()  # RUNPOD_REST_URL points at a closed local port
    state = pod.wait_finished()
    assert state["state"] == "succeeded" and state["exit_code"] == 0
    assert state["stop_requested"] is False and "could not stop the pod" in state["message"]
    assert "ERROR: could not stop the pod" in pod.log_text()
    assert len(pod.runpodctl_calls()) == 2


def test_stop_pod_0_leaves_the_pod_running(pod):
    pod.launch(RT_STOP_POD="0")
    state = pod.wait_finished()
    assert state["state"] == "succeeded" and state["stop_requested"] is False
    assert pod.runpodctl_calls() == []
    assert "RT_STOP_POD=0" in pod.log_text()
    assert [f[2:4] for f in footers(pod.log_text())] == [("succeeded", "0")]


def test_the_pod_waits_for_the_runner_to_confirm_before_stopping(pod):
    run = pod.launch(RT_ACK_WAIT="60", RT_RUN_ID="acked")
    assert run.returncode == 0, run.stderr
    pod.wait_log("waiting up to 60s for the runner")
    state = pod.state()
    assert state["state"] == "succeeded"
    assert [f[:3] for f in footers(pod.log_text())] == [("acked", "1", "succeeded")]
    assert pod.runpodctl_calls() == [] and pod.session_alive(), "no stop before the runner confirmed"

    (pod.workspace / ".runner" / "ack").write_text("acked 1")
    pod.wait_finished()
    assert [c["argv"] for c in pod.runpodctl_calls()] == [["pod", "stop", POD_ID]]
    assert "the runner confirmed" in pod.log_text()


def test_without_a_confirmation_the_pod_is_stopped_after_the_wait(pod):
    (pod.workspace / ".runner").mkdir(parents=True)
    (pod.workspace / ".runner" / "ack").write_text("acked 1")  # stale: from an older attempt
    pod.launch(RT_ACK_WAIT="0.5", RT_RUN_ID="acked")
    state = pod.wait_finished()
    assert state["stop_requested"] is True
    assert [c["argv"] for c in pod.runpodctl_calls()] == [["pod", "stop", POD_ID]]
    assert "no confirmation from a runner within 0.5s" in pod.log_text()


def test_inspect_reports_a_running_training_and_starts_nothing(pod):
    pod.write_config("configs/smoke.yaml", max_steps=100000, step_seconds=0.02)
    pod.write_config("configs/other.yaml", output_dir="checkpoints/other")
    pod.commit("long run + another config")
    assert pod.launch(RT_RUN_ID="insp").returncode == 0
    out = pod.repo_dir / "checkpoints" / "smoke"
    wait_for(lambda: (out / "checkpoint-10" / "trainer_state.json").exists(), 60, "a first checkpoint")

    info = pod.inspect()
    assert info["session_running"] is True
    assert info["state"]["state"] == "running" and info["state"]["run_id"] == "insp"
    assert info["output_dir"] == str(out)
    assert info["newest_checkpoint"].startswith(str(out / "checkpoint-"))
    assert info["skipped_checkpoints"] == []
    assert info["log"] == str(pod.log_file)
    assert 0 < info["log_size"] <= pod.log_file.stat().st_size

    other = pod.inspect(RT_CONFIG="configs/other.yaml")
    assert other["output_dir"] == str(pod.repo_dir / "checkpoints" / "other")
    assert other["newest_checkpoint"] is None

    assert len(headers(pod.log_text())) == 1
    assert len(pod.processes_running(str(pod.repo_dir / "scripts" / "train.py"))) == 1
    pod.tmux("kill-session", "-t", f"={pod.session}")
    pod.wait_finished()
    assert pod.inspect()["session_running"] is False


def test_inspect_on_a_fresh_volume(pod):
    info = pod.inspect()
    assert info == {
        "state": None,
        "session_running": False,
        "output_dir": None,
        "newest_checkpoint": None,
        "skipped_checkpoints": [],
        "log": str(pod.log_file),
        "log_size": 0,
        "session": pod.session,
        "note": None,
        "idle": None,
    }
    assert not (pod.workspace / ".runner").exists(), "inspect changes nothing"


# --- launchers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["auto-2", "rp-env-4", "python-forced", "accelerate"])
def test_launcher_selection(pod, case):
    torchrun_log = pod.install_recording_launcher("torchrun")
    accelerate_log = pod.install_recording_launcher("accelerate")
    overrides = {}
    if case == "auto-2":
        overrides = {"RT_GPU_COUNT": "2"}
    elif case == "rp-env-4":
        pod.write_rp_env(RUNPOD_GPU_COUNT="4")
    elif case == "python-forced":
        overrides = {"RT_GPU_COUNT": "2", "RT_LAUNCHER": "python"}
    else:
        overrides = {"RT_GPU_COUNT": "2", "RT_LAUNCHER": "accelerate"}
    run = pod.launch(**overrides)
    assert run.returncode == 0, run.stderr
    assert pod.wait_finished()["state"] == "succeeded"

    script = str(pod.repo_dir / "scripts" / "train.py")
    config = str(pod.repo_dir / "configs" / "smoke.yaml")
    torchrun = [json.loads(line) for line in torchrun_log.read_text().splitlines()] if torchrun_log.exists() else []
    accelerate = (
        [json.loads(line) for line in accelerate_log.read_text().splitlines()] if accelerate_log.exists() else []
    )
    expected = {
        "auto-2": ("torchrun", 2, [["--standalone", "--nproc_per_node=2", script, "--config", config]], []),
        "rp-env-4": ("torchrun", 4, [["--standalone", "--nproc_per_node=4", script, "--config", config]], []),
        "python-forced": ("python", 2, [], []),
        "accelerate": (
            "accelerate",
            2,
            [],
            [["launch", "--num_processes=2", "--multi_gpu", script, "--config", config]],
        ),
    }[case]
    assert (run.result["launcher"], run.result["gpu_count"]) == expected[:2]
    assert torchrun == expected[2]
    assert accelerate == expected[3]


def test_torchrun_missing_fails_clearly_and_stops_pod(pod):
    run = pod.launch(RT_LAUNCHER="torchrun", RT_GPU_COUNT="2")
    assert run.returncode == 0
    state = pod.wait_finished()
    assert state["state"] == "failed" and "torchrun not found" in state["message"]
    assert state["stop_requested"] is True


# --- hostile strings ---------------------------------------------------------------------------


def test_hostile_paths_branch_config_and_run_id_are_inert(make_pod):
    nasty = "$(touch pwned) `touch pwned2`; 'q' \"d\" & |"
    pod = make_pod(
        workspace_name=f"ws {nasty}",
        origin_name=f"repo {nasty}",
        branch="rt/$(touch${IFS}pwned3);x'\"`touch${IFS}pwned4`",
    )
    config = f"configs/cfg {nasty}.yaml"
    pod.write_config(
        config, output_dir=f"checkpoints/out {nasty}", logging_dir=f"logs/l {nasty}", max_steps=12, save_steps=5
    )
    pod.commit("hostile config")
    refused = pod.launch(RT_CONFIG=config, RT_RUN_ID="id;$(touch${IFS}pwned5)'\"`x`")
    assert_nothing_launched(pod, refused)  # a run id names files on the volume: letters, digits, . _ -
    assert "RT_RUN_ID must be letters, digits" in refused.error_lines[0]
    run_id = "id.with-dots_and-dashes"
    run = pod.launch(RT_CONFIG=config, RT_RUN_ID=run_id)
    assert run.returncode == 0, run.stderr
    res = run.result
    assert res["run_id"] == run_id and res["config"] == config
    assert res["repo_dir"] == str(pod.repo_dir)
    assert res["output_dir"] == str(pod.repo_dir / "checkpoints" / f"out {nasty}")

    state = pod.wait_finished()
    assert state["state"] == "succeeded", pod.log_text()[-2000:]
    assert state["last_checkpoint"] == str(pod.repo_dir / "checkpoints" / f"out {nasty}" / "checkpoint-12")
    (header,) = headers(pod.log_text())
    assert (header.run_id, header.config) == (run_id, config)
    assert git(pod.repo_dir, "rev-parse", "--abbrev-ref", "HEAD") == pod.branch
    for where in (pod.root, Path.home(), Path.cwd()):
        assert not list(where.glob("**/pwned*") if where == pod.root else where.glob("pwned*")), where


def test_synced_data_on_the_volume_is_linked_into_the_repo(make_pod):
    # `runner sync` fills <workspace>/data; configs say data/audio_0 relative to the repo.
    pod = make_pod()
    (pod.workspace / "data" / "audio_0").mkdir(parents=True)
    (pod.workspace / "data" / "audio_0" / "a.wav").write_bytes(b"RIFF")
    run = pod.launch(RT_RUN_ID="run-data")
    assert run.returncode == 0, run.stderr
    link = pod.repo_dir / "data"
    assert link.is_symlink() and link.resolve() == (pod.workspace / "data").resolve()
    assert (link / "audio_0" / "a.wav").read_bytes() == b"RIFF"
    assert pod.wait_finished()["state"] == "succeeded"
    assert f"[remote_train] data: {link} -> {pod.workspace / 'data'}" in pod.log_text()


def test_a_repo_with_its_own_data_dir_is_left_alone(make_pod):
    pod = make_pod()
    (pod.workspace / "data").mkdir()
    run = pod.launch(RT_RUN_ID="run-own-data")
    assert run.returncode == 0, run.stderr
    pod.wait_finished()
    (pod.repo_dir / "data").unlink()
    (pod.repo_dir / "data").mkdir()
    (pod.repo_dir / "data" / "mine.txt").write_text("x")
    run = pod.launch(RT_RUN_ID="run-own-data")
    assert run.returncode == 0, run.stderr
    pod.wait_finished()
    assert not (pod.repo_dir / "data").is_symlink() and (pod.repo_dir / "data" / "mine.txt").exists()


# --- the venv check on a warm start (no Python started while the interpreter files are unchanged) ---

FAST_NOTE = "venv: same interpreter files as at the last check"


def test_warm_start_checks_the_venv_python_without_starting_it(make_pod, tmp_path):
    pod = make_pod()
    python = real_python()  # a real binary, as RT_PYTHON=python3 on a pod image
    record = pod.repo_dir / "venv" / ".rt-python"
    assert pod.launch().returncode == 0  # via the wrapper script: nothing recorded
    pod.wait_finished()
    assert not record.exists()

    first = pod.launch(RT_PYTHON=python)  # interpreter not recorded yet: checked with Python
    assert first.returncode == 0, first.stderr
    pod.wait_finished()
    section = attempt_log(pod, first.result["log_offset"])
    assert FAST_NOTE not in section and "requirements unchanged" in section
    rec_id, rec_version = record.read_text().splitlines()
    assert rec_id.startswith(os.path.realpath(python) + "|")
    assert (
        rec_version
        == subprocess.run(
            [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True
        ).stdout.splitlines()[0]
    )

    second = pod.launch(RT_PYTHON=python)  # same files: the recorded version is used
    assert second.returncode == 0, second.stderr
    assert pod.wait_finished()["state"] == "succeeded"
    section = attempt_log(pod, second.result["log_offset"])
    assert FAST_NOTE in section and "requirements unchanged" in section
    assert pod.pip_calls() == []

    # Another interpreter file (here a copy of the same binary): checked with Python again, venv kept.
    other = tmp_path / "other-python" / "python3"
    other.parent.mkdir()
    shutil.copy2(python, other)
    third = pod.launch(RT_PYTHON=str(other))
    assert third.returncode == 0, third.stderr
    assert pod.wait_finished()["state"] == "succeeded"
    section = attempt_log(pod, third.result["log_offset"])
    assert FAST_NOTE not in section and "recreating" not in section
    assert record.read_text().startswith(f"{other}|")
    assert pod.pip_calls() == []


def test_a_recorded_venv_whose_python_vanished_is_rebuilt(make_pod):
    pod = make_pod(venv="cold")
    python = real_python()
    for _ in range(2):
        run = pod.launch(RT_PYTHON=python, RT_STOP_POD="0")
        assert run.returncode == 0, run.stderr
        pod.wait_finished()
    assert FAST_NOTE in attempt_log(pod, run.result["log_offset"])
    venv_python = pod.repo_dir / "venv" / "bin" / "python"
    venv_python.unlink()
    venv_python.symlink_to("/nonexistent/python3.9")  # the old image's interpreter is gone

    # The record no longer matches the files, so Python checks, finds the venv broken and rebuilds it
    # (through the harness's wrapper, which copies the prebuilt venv instead of running pip).
    run = pod.launch(RT_PYTHON=str(pod.python_wrapper))
    assert run.returncode == 0, run.stderr
    assert pod.wait_finished()["state"] == "succeeded"
    section = attempt_log(pod, run.result["log_offset"])
    assert FAST_NOTE not in section
    assert "does not work with" in section and "recreating" in section


def test_a_wrapper_script_as_rt_python_is_always_checked_by_starting_it(pod):
    # A shim or wrapper can switch interpreters without changing itself: its file identity proves nothing.
    for _ in range(2):
        run = pod.launch()
        assert run.returncode == 0, run.stderr
        assert pod.wait_finished()["state"] == "succeeded"
        assert FAST_NOTE not in attempt_log(pod, run.result["log_offset"])
    assert not (pod.repo_dir / "venv" / ".rt-python").exists()


# --- launcher lines always start a line of their own -----------------------------------------------

PROGRESS_BAR = """\
import signal, sys, time
sys.stdout.write("loading\\n")
for i in range(1, 4):
    sys.stdout.write("\\r%d/3 [%s%s]" % (i, "#" * i, " " * (3 - i)))   # a tqdm-style redraw, no newline
    sys.stdout.flush()
if len(sys.argv) > 1 and "wait" in open(sys.argv[sys.argv.index("--config") + 1]).read():
    open("bar-waiting", "w").close()
    time.sleep(600)
"""


def test_header_footer_and_notes_start_on_their_own_line_after_a_progress_bar(pod):
    (pod.origin / "scripts" / "bar.py").write_text(PROGRESS_BAR)
    (pod.origin / "configs" / "wait.yaml").write_text("output_dir: checkpoints/bar\nwait: 1\n")
    (pod.origin / "configs" / "bar.yaml").write_text("output_dir: checkpoints/bar\n")
    pod.commit("a trainer that leaves its progress bar unfinished")

    first = pod.launch(RT_TRAIN_SCRIPT="scripts/bar.py", RT_CONFIG="configs/bar.yaml", RT_RUN_ID="bar")
    assert first.returncode == 0, first.stderr
    assert pod.wait_finished()["state"] == "succeeded"
    lines = raw_log(pod).split("\n")
    assert "\r1/3 [#  ]\r2/3 [## ]\r3/3 [###]" in lines, "training's output is kept as it was written"
    ended = next(i for i, line in enumerate(lines) if line.startswith("[remote_train] training ended: state=succeeded"))
    assert lines[ended - 1].endswith("3/3 [###]")
    assert footers(raw_log(pod)) == [("bar", "1", "succeeded", "0", "none")]

    # Killed mid-bar: the footer of the preempted attempt, and the next header, still start a line.
    second = pod.launch(RT_TRAIN_SCRIPT="scripts/bar.py", RT_CONFIG="configs/wait.yaml", RT_RUN_ID="bar")
    assert second.returncode == 0, second.stderr
    wait_for(lambda: (pod.repo_dir / "bar-waiting").exists(), 30, "the bar to be drawn")
    os.kill(pod.supervisor_pid(), signal.SIGTERM)
    assert pod.wait_finished()["state"] == "preempted"
    assert [f[1:3] for f in footers(raw_log(pod))] == [("1", "succeeded"), ("2", "preempted")]
    assert raw_log(pod).split("\n")[-2].startswith("[remote_train] SIGTERM received")

    with pod.log_file.open("a") as fh:
        fh.write("\r7/9 [#######  ]")  # as if the last write of a killed container
    third = pod.launch(RT_TRAIN_SCRIPT="scripts/bar.py", RT_CONFIG="configs/bar.yaml", RT_RUN_ID="bar")
    assert third.returncode == 0, third.stderr
    section = attempt_log(pod, third.result["log_offset"])
    (header,) = headers(section)
    assert section.startswith(header.line() + "\n") and header.attempt == 3
    assert pod.log_file.read_bytes()[: third.result["log_offset"]].endswith(b"\r7/9 [#######  ]\n")
    pod.wait_finished()


# --- the shim: the program is put in place once per content hash ----------------------------------


def test_the_program_is_written_once_atomically_and_reused(pod):
    runner_dir = pod.workspace / ".runner"
    assert pod.launch(RT_RUN_ID="p").returncode == 0
    pod.wait_finished()
    (program,) = [p for p in runner_dir.glob("podside-*.pyz") if not p.is_symlink()]
    before = program.stat()
    assert pod.launch(RT_RUN_ID="p").returncode == 0
    pod.wait_finished()
    assert [p for p in runner_dir.glob("podside-*.pyz") if not p.is_symlink()] == [program]
    assert os.readlink(runner_dir / "podside-current.pyz") == program.name, "what the pod's start command runs"
    after = program.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "reused, not rewritten"
    assert not [p for p in runner_dir.iterdir() if p.name.startswith(".podside")], "no temp file left"
    from remote.podside import bundle

    assert program.name == f"podside-{bundle.program_digest()}.pyz"
    assert program.read_bytes() == bundle.program_bytes()
