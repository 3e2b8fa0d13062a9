"""Training's secrets (TRAIN_SECRETS) reach the training process and nothing else: not a command line,
not the log, not .runner/supervise.json or the run's spec, not the supervisor's or tmux's environment;
and a relaunch that nobody attends (the pod's own start after a preemption) still gives them to training.
A canary HF_TOKEN is looked for everywhere the stand-in pod keeps anything."""

from __future__ import annotations

import json
import os
import signal
import stat
import uuid
from pathlib import Path

import pytest

from remote.podside.contract import Inputs
from runner.train.remote_launch import RunPolicy
from tests.fixtures.pod_harness import PodSandbox, runner_inputs, wait_for

CANARY = "hf_CANARYtokenZ9y8x7w6v5u4"


@pytest.fixture
def pod(tmp_path, venv_templates):
    sandbox = PodSandbox(
        tmp_path / "pod", session=f"rt-sec-{uuid.uuid4().hex[:10]}", venv_template=venv_templates["warm"]
    )
    (sandbox.root / "tmp").mkdir()
    yield sandbox
    sandbox.cleanup()


def launch_inputs(secrets: dict[str, str]) -> dict[str, str]:
    """The RT_* inputs `runner train` sends for a run with these training secrets."""
    return runner_inputs(run_policy=RunPolicy(train_secrets=secrets))


def secrets_input(**secrets: str) -> str:
    return launch_inputs(secrets)[Inputs.TRAIN_SECRETS]


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")


def cmdlines_under(root: Path) -> str:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return "\n".join(line for line in out if str(root) in line)


def files_holding(root: Path, text: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and text.encode() in path.read_bytes():
                found.append(str(path.relative_to(root)))
        except OSError:
            pass
    return found


def test_the_canary_reaches_training_only_also_after_a_relaunch_nobody_attends(pod):
    pod.write_config("configs/smoke.yaml", max_steps=30, save_steps=5, step_seconds=0.15)
    pod.commit("30 slow steps")
    run = pod.launch(RT_RUN_ID="r1", RT_TRAIN_SECRETS=secrets_input(HF_TOKEN=CANARY), TMPDIR=str(pod.root / "tmp"))
    assert run.returncode == 0, run.stderr
    state = pod.wait_state("running")
    assert CANARY in environ_of(state["train_pid"]), "training has the token"
    assert f"HF_TOKEN={CANARY}" in environ_of(state["train_pid"]).split("\0")
    assert CANARY not in environ_of(state["supervisor_pid"]), "the supervisor's environment"
    assert CANARY not in pod.tmux("show-environment", "-g").stdout, "tmux's environment"
    assert CANARY not in cmdlines_under(pod.root), "a command line"
    assert CANARY not in run.stdout + run.stderr
    kept = pod.workspace / ".runner" / "train-secrets.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert files_holding(pod.root, CANARY) == ["workspace/.runner/train-secrets.json"], "only the private file"

    # A preemption, then the pod's own start relaunches the run with nobody attached.
    wait_for(
        lambda: (pod.repo_dir / "checkpoints" / "smoke" / "checkpoint-10" / "trainer_state.json").exists(),
        60,
        "checkpoint-10",
    )
    os.kill(pod.supervisor_pid(), signal.SIGTERM)
    pod.wait_state("preempted")
    pod.kill_container()
    started = pod.start_container(TMPDIR=str(pod.root / "tmp"))
    assert started.returncode == 0, started.stderr
    state = wait_for(
        lambda: (s := pod.state()) and s["attempt"] == 2 and s["state"] == "running" and s, 60, "attempt 2"
    )
    assert f"HF_TOKEN={CANARY}" in environ_of(state["train_pid"]).split("\0"), "the relaunch's training has it"
    assert CANARY not in environ_of(state["supervisor_pid"])
    assert CANARY not in cmdlines_under(pod.root)

    state = pod.wait_finished(timeout=120)
    assert state["state"] == "succeeded"
    assert not kept.exists(), "the run ended: nothing keeps the token any more"
    assert files_holding(pod.root, CANARY) == [], "the volume, the log, the records, temp files"
    assert CANARY not in pod.tmux("show-environment", "-g").stdout


def test_a_launch_without_secrets_clears_what_an_earlier_one_left(pod):
    kept = pod.workspace / ".runner" / "train-secrets.json"
    pod.write_config("configs/smoke.yaml", max_steps=400, save_steps=1000, step_seconds=0.05)
    pod.commit("a long run")
    run = pod.launch(RT_RUN_ID="r1", RT_TRAIN_SECRETS=secrets_input(HF_TOKEN=CANARY))
    assert run.returncode == 0, run.stderr
    assert json.loads(kept.read_text()) == {"HF_TOKEN": CANARY}
    # A second runner attaches (already-running) with TRAIN_SECRETS emptied: the file goes.
    run = pod.launch(RT_RUN_ID="r1", RT_TRAIN_SECRETS=secrets_input())
    assert run.returncode == 0, run.stderr
    assert not kept.exists()


@pytest.mark.parametrize("name", ["RT_CONFIG", "PATH", "1BAD", "RUNPOD_API_KEY"])
def test_a_name_that_cannot_be_a_secret_fails_the_launch_without_its_value(pod, name):
    run = pod.launch(RT_TRAIN_SECRETS=json.dumps({name: CANARY}), TMPDIR=str(pod.root / "tmp"))
    assert run.returncode == 2
    assert "RT_TRAIN_SECRETS" in run.stderr and CANARY not in run.stdout + run.stderr
    assert pod.state() is None, "nothing started"
    assert files_holding(pod.root, CANARY) == []


def test_the_runner_reads_the_secrets_from_the_env_file_and_hides_them(tmp_path, monkeypatch):
    from runner.errors import SettingsError
    from runner.secret_settings import required
    from runner.settings import load_settings

    for key in ("TRAIN_SECRETS", "HF_TOKEN", "WANDB_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    env_file = tmp_path / ".runpod.env"
    env_file.write_text(f"TRAIN_SECRETS=HF_TOKEN,WANDB_API_KEY\nHF_TOKEN={CANARY}\n")
    env_file.chmod(0o600)
    warned: list[str] = []
    settings = load_settings(env_file, warn=warned.append, cwd=tmp_path)
    assert warned == [], "a named secret in the file is no unknown setting"
    assert settings.train_secrets == {"HF_TOKEN": CANARY}
    assert CANARY in settings.secrets(), "every echo redacts it"
    assert CANARY not in repr(settings)
    with pytest.raises(SettingsError) as missing:
        required(settings)
    assert "WANDB_API_KEY" in missing.value.message and CANARY not in missing.value.message
    monkeypatch.setenv("WANDB_API_KEY", "wandb-from-the-environment")
    settings = load_settings(env_file, warn=warned.append, cwd=tmp_path)
    assert required(settings) == {"HF_TOKEN": CANARY, "WANDB_API_KEY": "wandb-from-the-environment"}
    assert json.dumps(launch_inputs(dict(settings.train_secrets))).count(CANARY) == 1, "in RT_TRAIN_SECRETS only"
    assert CANARY not in repr(RunPolicy(train_secrets=settings.train_secrets))


def test_a_watcher_missing_a_value_leaves_the_kept_secrets_alone(tmp_path, monkeypatch):
    """A `runner watch` from cron relaunches with whatever its environment has: a named value missing
    there must not wipe or thin out what `runner train` (which checked them all) left on the volume."""
    from runner.secret_settings import for_launch
    from runner.settings import load_settings

    for key in ("TRAIN_SECRETS", "HF_TOKEN", "WANDB_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    env_file = tmp_path / ".runpod.env"
    env_file.write_text(f"TRAIN_SECRETS=HF_TOKEN,WANDB_API_KEY\nHF_TOKEN={CANARY}\n")
    env_file.chmod(0o600)
    partial = load_settings(env_file, warn=lambda m: None, cwd=tmp_path)
    assert Inputs.TRAIN_SECRETS not in RunPolicy(train_secrets=for_launch(partial)).inputs(), "the volume's file stays"
    monkeypatch.setenv("WANDB_API_KEY", "wandb-key")
    full = load_settings(env_file, warn=lambda m: None, cwd=tmp_path)
    sent = json.loads(RunPolicy(train_secrets=for_launch(full)).inputs()[Inputs.TRAIN_SECRETS])
    assert sent == {"HF_TOKEN": CANARY, "WANDB_API_KEY": "wandb-key"}
    env_file.write_text("")
    none = load_settings(env_file, warn=lambda m: None, cwd=tmp_path)
    assert RunPolicy(train_secrets=for_launch(none)).inputs()[Inputs.TRAIN_SECRETS] == "{}", "none named: the file goes"
