"""Shared setup for the `runner train` tests (tests/runner/test_train.py, tests/runner/test_train_local.py).

A `TrainEnv` is one user's machine plus one pretend pod:
- project: a git repo with Pulumi.yaml (the project root) that is also the training repo
  (REPO_URL = its path): remote/smoke_train.py as TRAIN_SCRIPT and configs committed;
- the "pod": the real sshd on 127.0.0.1 (fixture `sshd`), listed by the fake RunPod API as the
  pod's SSH endpoint; its workspace (outputs.workspace) is a tmp dir;
- the pod's own environment file (RT_RP_ENV_FILE): RUNPOD_POD_ID, the pod-scoped RUNPOD_API_KEY and
  RUNPOD_REST_URL = the fake, so the launcher's self-stop reaches the fake API. It is read on the
  pod side only; no key travels on a command line or through the runner;
- launcher knobs through the runner's RT_* passthrough: a tmux session name of its own per test
  (RT_SESSION) and RT_PYTHON = a wrapper whose `-m venv` skips pip (no requirements to install;
  creating a venv with pip takes seconds).

Runs go through runner.cli.main in-process (stdout = log lines, stderr = runner messages), either
to completion (`run`) or in a background thread (`start`) while the test acts on the pod.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from remote.podside.contract import parse_header
from runner import cli, timeouts
from runner.settings import KEYS
from standins.preemption import processes_under
from standins.private_tmux import private_tmux_env
from standins.pulumi_cli import SAMPLE_OUTPUTS
from tests.remote_harness import git, real_python, wait_for

ROOT = Path(__file__).resolve().parents[2]
SMOKE_TRAINER = ROOT / "remote" / "smoke_train.py"
TRAIN_SCRIPT = "remote/smoke_train.py"


def smoke_config(**values) -> str:
    cfg = {"output_dir": "checkpoints/smoke", "max_steps": 12, "save_steps": 5, "step_seconds": 0.02}
    cfg.update(values)
    return "".join(f"{k}: {v}\n" for k, v in cfg.items() if v is not None)


def make_training_repo(project: Path) -> None:
    """The project checkout that doubles as the training repo (committed content is what runs)."""
    project.mkdir(parents=True, exist_ok=True)
    git(project, "init", "-q", "-b", "main")
    (project / "Pulumi.yaml").write_text("name: t\nruntime: python\n")
    (project / "remote").mkdir(exist_ok=True)
    shutil.copy(SMOKE_TRAINER, project / TRAIN_SCRIPT)
    (project / "configs").mkdir(exist_ok=True)
    (project / "configs" / "smoke.yaml").write_text(smoke_config())
    (project / ".gitignore").write_text("venv/\ncheckpoints/\n.local-workspace/\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")


def write_python_wrapper(path: Path, hold: Path | None = None) -> Path:
    """RT_PYTHON stand-in: `-m venv DIR` makes a venv without pip (fast); anything else is python.
    While the file `hold` exists, `-m venv` waits first (a slow setup, to interrupt it)."""
    real = real_python()
    wait = f'while [ -e "{hold}" ]; do sleep 0.05; done' if hold is not None else ":"
    path.write_text(f"""#!/bin/bash
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then {wait}; exec {real} -m venv --without-pip "$3"; fi
exec {real} "$@"
""")
    path.chmod(0o755)
    return path


@dataclass
class TrainResult:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


class BackgroundRun:
    """cli.main(argv) in a thread; output is read from capsys once it is done."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True, name="runner-train")
        self.thread.start()

    def _main(self) -> None:
        try:
            self.code = cli.main(self.argv)
        except BaseException as e:  # noqa: BLE001 - re-raised in wait()
            self.error = e

    def wait(self, timeout: float = 60.0) -> int:
        self.thread.join(timeout)
        if self.thread.is_alive():
            faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)  # where it hangs
            raise AssertionError(f"`runner {' '.join(self.argv)}` did not finish within {timeout}s")
        if self.error is not None:
            raise self.error
        assert self.code is not None
        return self.code


@dataclass
class TrainEnv:
    root: Path
    capsys: object
    fake: object = None
    sshd: object = None
    stub: object = None
    session: str = field(default_factory=lambda: f"rt-train-{uuid.uuid4().hex[:10]}")
    pod_id: str = ""

    def __post_init__(self) -> None:
        self.project = self.root / "project"
        self.workspace = self.root / "workspace"
        self.state_dir = self.root / "state"
        self.rp_env_file = self.root / "rp_environment"
        self.tmux_tmpdir = self.root / "tmux"  # a tmux server of its own (TMUX_TMPDIR passthrough)
        self.workspace.mkdir(parents=True)
        self.tmux_tmpdir.mkdir()
        make_training_repo(self.project)
        self.venv_hold = self.root / "venv-hold"  # create it to make the venv setup wait
        self.python_wrapper = write_python_wrapper(self.root / "python-for-venv", self.venv_hold)

    # ---- the pod ----------------------------------------------------------------------------------
    def add_pod(self, status: str = "RUNNING", *, self_stop: bool = True, outputs: dict | None = None, **kw) -> str:
        pod = self.fake.add_pod(status=status, **kw)
        self.pod_id = pod.id
        # No idle stop unless a test asks for one (tests/remote/test_idlewatch.py): it would outlive the test.
        self.stub.set(
            outputs={
                **SAMPLE_OUTPUTS,
                "pod_id": pod.id,
                "workspace": str(self.workspace),
                "ssh_user": self.sshd.user,
                "cost_per_hr": 0.35,
                "idle_stop_minutes": 0,
                **(outputs or {}),
            }
        )
        env = {"RUNPOD_POD_ID": pod.id, "RUNPOD_REST_URL": self.fake.rest_url}
        if self_stop:
            env["RUNPOD_API_KEY"] = self.fake.pod_api_key(pod.id)
        self.rp_env_file.write_text("".join(f'export {k}="{v}"\n' for k, v in env.items()))
        return pod.id

    @property
    def pod(self):
        return self.fake.pods[self.pod_id]

    def stop_requests(self) -> list:
        return [r for r in self.fake.requests if r.action == "stop"]

    # ---- the training repo --------------------------------------------------------------------
    def write_config(self, rel: str, text: str, *, commit: bool = True) -> str:
        path = self.project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if commit:
            git(self.project, "add", "-A")
            git(self.project, "commit", "-q", "-m", f"config {rel}")
        return rel

    # ---- the workspace ------------------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.workspace / "logs" / "current.log"

    @property
    def state_file(self) -> Path:
        return self.workspace / ".runner" / "state.json"

    def log_text(self) -> str:
        try:
            return self.log_file.read_text()
        except OSError:
            return ""

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        wait_for(lambda: text in self.log_text(), timeout, f"{text!r} in the log (tail {self.log_text()[-600:]!r})")

    def wait_state(self, *states: str, timeout: float = 30.0) -> dict:
        return wait_for(
            lambda: (s := self.state()) and s.get("state") in states and s,
            timeout,
            f"state in {states} (now {self.state()!r})",
        )

    def log_lines_from(self, offset: int) -> list[str]:
        return self.log_file.read_bytes()[offset:].decode().splitlines()

    def headers(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if parse_header(line) is not None]

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["tmux", *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=private_tmux_env(self.tmux_tmpdir),
        )

    def session_alive(self) -> bool:
        return self.tmux("has-session", "-t", f"={self.session}").returncode == 0

    def wait_session_gone(self, timeout: float = 30.0) -> None:
        wait_for(lambda: not self.session_alive(), timeout, f"tmux session {self.session} to end")

    def newest_complete_checkpoint(self, output_dir: str = "checkpoints/smoke") -> Path | None:
        base = self.workspace / "project" / output_dir
        done = [p for p in base.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
        return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)

    def kill_training(self) -> None:
        """SIGKILL the supervisor and the trainer (a crashed pod), then drop the tmux session."""
        for pid in self._processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.tmux("kill-session", "-t", f"={self.session}")

    def cleanup(self) -> None:
        self.kill_training()
        self.tmux("kill-server")

    def _processes(self) -> list[int]:
        pids: set[int] = set()
        state = self.state() or {}
        for key in ("supervisor_pid", "train_pid"):
            if isinstance(state.get(key), int):
                pids.add(state[key])
        pids.update(processes_under(self.root))
        return sorted(pids)

    # ---- running the runner -------------------------------------------------------------------
    def run(self, *argv: str) -> TrainResult:
        self.capsys.readouterr()
        code = cli.main(list(argv))
        captured = self.capsys.readouterr()
        return TrainResult(code, captured.out, captured.err)

    def start(self, *argv: str) -> BackgroundRun:
        self.capsys.readouterr()
        self._out, self._err = [], []
        return BackgroundRun(list(argv))

    def peek(self) -> tuple[str, str]:
        """What a background run printed so far (stdout, stderr)."""
        captured = self.capsys.readouterr()
        self._out.append(captured.out)
        self._err.append(captured.err)
        return "".join(self._out), "".join(self._err)

    def wait_printed(self, text: str, *, stream: str = "err", timeout: float = 30.0) -> None:
        wait_for(
            lambda: text in self.peek()[0 if stream == "out" else 1],
            timeout,
            f"{text!r} printed by the runner (stderr so far: {''.join(self._err)[-800:]!r})",
        )

    def finish(self, background: BackgroundRun, timeout: float = 60.0) -> TrainResult:
        code = background.wait(timeout)
        out, err = self.peek()
        return TrainResult(code, out, err)


def step_numbers(lines: list[str]) -> list[int]:
    return [int(line.split()[1].split("/")[0]) for line in lines if line.startswith("step ")]


def assert_printed_is_the_log(result: TrainResult, env: TrainEnv, offset: int = 0) -> None:
    """Every printed line is the pod's log from the attempt's offset, in order: none twice, none missing."""
    log = env.log_lines_from(offset)
    printed = result.lines
    assert printed, f"nothing printed; stderr: {result.err}"
    assert printed == log[: len(printed)], "printed lines differ from the log on the pod"
    assert any(line.startswith("done: ") for line in printed), result.err


def base_env(monkeypatch, env: TrainEnv) -> None:
    for key in KEYS:
        if key != "PULUMI_BINARY":
            monkeypatch.delenv(key, raising=False)
    for key in list(os.environ):
        if key.startswith("RT_"):
            monkeypatch.delenv(key, raising=False)
    # A detached run leaves a background watcher (runner/watcher/background.py) that outlives the test
    # and its stand-ins; only the tests of the watcher itself (test_watch.py, test_unattended.py) want one.
    monkeypatch.setenv("RUNNER_WATCH", "0")
    monkeypatch.chdir(env.project)
    monkeypatch.setenv("RUNNER_STATE_DIR", str(env.state_dir))
    monkeypatch.setenv("REPO_URL", str(env.project))
    monkeypatch.setenv("TRAIN_SCRIPT", TRAIN_SCRIPT)
    monkeypatch.setenv("RT_SESSION", env.session)
    monkeypatch.setenv("RT_PYTHON", str(env.python_wrapper))
    monkeypatch.setenv("RT_RP_ENV_FILE", str(env.rp_env_file))
    monkeypatch.setenv("TMUX_TMPDIR", str(env.tmux_tmpdir))
    # Short waits: the events they wait for happen within milliseconds here.
    shorten_timeouts(monkeypatch, end_grace_s=0.3, stop_check_interval_s=0.2, stop_verify_s=20.0)


def shorten_timeouts(monkeypatch, **changes: float) -> None:
    """Shorter waits for one test (runner/timeouts.py), restored by monkeypatch afterwards."""
    monkeypatch.setattr(timeouts, "ACTIVE", dataclasses.replace(timeouts.ACTIVE, **changes))


@pytest.fixture
def train_env(tmp_path, monkeypatch, capsys, fake_runpod, sshd, stub_pulumi):
    env = TrainEnv(tmp_path, capsys, fake_runpod, sshd, stub_pulumi)
    base_env(monkeypatch, env)
    for k, v in fake_runpod.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SSH_KEY_PATH", sshd.key_path)
    monkeypatch.setenv("POD_START_TIMEOUT", "30")
    sshd.ensure_running()
    fake_runpod.set_ssh_target(sshd.host, sshd.ports)
    yield env
    env.cleanup()


@pytest.fixture
def local_env(tmp_path, monkeypatch, capsys):
    env = TrainEnv(tmp_path, capsys)
    base_env(monkeypatch, env)
    yield env
    env.cleanup()


__all__ = [
    "BackgroundRun",
    "TrainEnv",
    "TrainResult",
    "assert_printed_is_the_log",
    "local_env",
    "smoke_config",
    "step_numbers",
    "train_env",
    "wait_for",
]
