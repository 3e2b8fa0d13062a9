"""The short launch script (runner/train/remote_launch.py, remote/podside/bundle.short_launcher_script):
once a launch through an endpoint succeeded, the runner sends the shim without the ~200 kB embedded
program; the shim runs `.runner/podside-<hash>.pyz` from the volume, or answers RT_NEED_PROGRAM
when it is not there, and the runner sends the full script on the same connection.

Real bash, tmux and git through runner.remote.local.LocalShell (SCRIPT_COMMAND, the same bytes as
over SSH) against a PodSandbox workspace.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from remote.podside import bundle, contract
from remote.podside.contract import VolumePaths
from runner.remote.local import LocalShell
from runner.remote.pod_view import inspect_pod
from runner.train import remote_launch as train_launch
from tests.fixtures.pod_harness import PodSandbox


class RecordingShell(LocalShell):
    """LocalShell that keeps every script it was asked to run."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.scripts: list[str] = []

    def run_script(self, script_text, env, **kw):
        self.scripts.append(script_text)
        return super().run_script(script_text, env, **kw)


@pytest.fixture
def pod(tmp_path, venv_templates):
    sandbox = PodSandbox(
        tmp_path / "pod", session=f"rt-short-{uuid.uuid4().hex[:10]}", venv_template=venv_templates["warm"]
    )
    yield sandbox
    sandbox.cleanup()


def launch(pod: PodSandbox, known: Path, shell: RecordingShell, said: list[str]):
    env = pod.rt_env(RT_RUN_ID="s", RT_STOP_POD="0")
    return train_launch.launch(lambda: shell, env, label="the sandbox", say=said.append, known_programs=known)


def kinds(shell: RecordingShell) -> list[str]:
    return [
        "short" if text == bundle.short_launcher_script() else "full" if text == bundle.launcher_script() else "other"
        for text in shell.scripts
    ]


def pyz(pod: PodSandbox) -> Path:
    return pod.workspace / ".runner" / f"podside-{bundle.program_digest()}.pyz"


def test_the_short_script_is_the_shim_and_the_call_only():
    short, full = bundle.short_launcher_script(), bundle.launcher_script()
    assert len(short) < 8000 < 100000 < len(full)
    assert short.rstrip().splitlines()[-1] == f"rt_cached {bundle.program_digest()} </dev/null"
    assert bundle.HEREDOC_END not in short
    shim = bundle.SHIM.read_text()
    assert f"{contract.NEED_PROGRAM_PREFIX}" in shim and f"exit {contract.NEED_PROGRAM_EXIT}" in shim


def test_after_a_launch_the_runner_sends_the_short_script_and_the_program_from_the_volume_runs(pod, tmp_path):
    known, said = tmp_path / "known", []
    shell = RecordingShell(env=pod.base_env())
    first = launch(pod, known, shell, said)
    assert first.status == "started" and kinds(shell) == ["full"]
    pod.wait_finished()
    assert [p.name for p in known.iterdir()] and all(p.stat().st_mode & 0o077 == 0 for p in known.iterdir())
    assert known.stat().st_mode & 0o077 == 0

    second = launch(pod, known, shell, said)
    assert second.status == "started" and second.attempt == 2 and kinds(shell) == ["full", "short"]
    assert pod.wait_finished()["state"] == "succeeded"


def test_a_missing_program_makes_the_runner_resend_the_full_script_on_the_same_connection(pod, tmp_path):
    known, said = tmp_path / "known", []
    shell = RecordingShell(env=pod.base_env())
    launch(pod, known, shell, said)
    pod.wait_finished()
    pyz(pod).unlink()  # e.g. a cleanup of .runner/
    again = launch(pod, known, shell, said)
    assert again.status == "started" and again.attempt == 2
    assert kinds(shell) == ["full", "short", "full"]
    assert pyz(pod).is_file()
    assert pod.wait_finished()["state"] == "succeeded"
    assert not [line for line in said if "error" in line.lower()], said


def test_a_wiped_volume_is_a_fresh_start_through_the_fallback(pod, tmp_path):
    known, said = tmp_path / "known", []
    shell = RecordingShell(env=pod.base_env())
    launch(pod, known, shell, said)
    pod.wait_finished()
    shutil.rmtree(pod.workspace)  # a new, empty network volume on the same endpoint
    pod.workspace.mkdir()
    fresh = launch(pod, known, shell, said)
    assert fresh.status == "started" and fresh.attempt == 1
    assert kinds(shell) == ["full", "short", "full"]
    assert pod.wait_finished()["state"] == "succeeded"


def test_without_a_record_directory_every_launch_sends_the_full_script(pod, tmp_path):
    shell = RecordingShell(env=pod.base_env())
    env = pod.rt_env(RT_RUN_ID="s", RT_STOP_POD="0")
    train_launch.launch(lambda: shell, env, label="the sandbox", say=lambda m: None)
    pod.wait_finished()
    train_launch.launch(lambda: shell, env, label="the sandbox", say=lambda m: None)
    pod.wait_finished()
    assert kinds(shell) == ["full", "full"]


def test_inspect_still_works_after_short_launches_and_a_removed_program(pod, tmp_path):
    known, said = tmp_path / "known", []
    shell = RecordingShell(env=pod.base_env())
    launch(pod, known, shell, said)
    pod.wait_finished()
    launch(pod, known, shell, said)
    pod.wait_finished()
    info = inspect_pod(
        shell, VolumePaths(str(pod.workspace)), session=pod.session, extra_env={"TMUX_TMPDIR": str(pod.tmux_tmpdir)}
    )
    assert info.state["attempt"] == 2 and info.session_running is False
    pyz(pod).unlink()
    info = inspect_pod(
        shell, VolumePaths(str(pod.workspace)), session=pod.session, extra_env={"TMUX_TMPDIR": str(pod.tmux_tmpdir)}
    )
    assert info.state["attempt"] == 2 and not pyz(pod).exists(), "inspect writes nothing to the volume"
