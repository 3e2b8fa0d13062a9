"""The no-cloud demo of the whole pod flow: `python -m standins.demo` (what `bash scripts/demo.sh` runs).

Everything RunPod and Pulumi would do is played on this machine, on 127.0.0.1:
  the pod        a real sshd (standins/pod_sandbox.py); its /workspace (the network volume) a temp dir
  RunPod's API   the fake (standins/runpod_api): it lists that sshd as the pod's SSH endpoint, a new
                 port after every start, and takes the pod's own stop call when training ends
  the stack      the stub `pulumi` (standins/pulumi_cli.py) answering `pulumi stack output`
  a preemption   injected once the first checkpoint is complete, as RunPod does it
                 (standins/preemption.py): the container killed, the SSH sessions dropped, the API
                 showing the pod EXITED "Outbid"
The runner itself is the real `python -m runner train --config configs/demo.yaml`, unmodified, run in
a throwaway training repo made in the demo's temp dir (REPO_URL = its path): the CPU smoke trainer
(remote/smoke_train.py, from the installed runner) as scripts/train.py and the config below, so the
demo works the same from a checkout and from an installed copy. Its output goes straight to this
terminal. The demo exits 0 when the run ended 0 after a recovered preemption with the pod stopped by
itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from standins import waiting
from standins.pod_sandbox import Sshd
from standins.preemption import kill_container, processes_under, runner_side
from standins.private_tmux import private_tmux_env
from standins.pulumi_cli import SAMPLE_OUTPUTS, StubPulumi
from standins.runpod_api import FakeRunPod

CONFIG = "configs/demo.yaml"
# The smoke trainer, slow enough that the preemption injected after the first checkpoint (step 10,
# ~1.5 s) always lands mid-run (steps 11-40 take another ~4.5 s), even on a loaded machine.
CONFIG_TEXT = """\
output_dir: checkpoints/demo
logging_dir: logs/demo
max_steps: 40
save_steps: 10
step_seconds: 0.15
"""
TRAIN_SCRIPT = "scripts/train.py"
BRANCH = "main"
SIMULATED = (
    "simulated here, on 127.0.0.1: RunPod's API (the fake), the pod (a local sshd, its /workspace "
    "a temp dir), `pulumi` (a stub with the stack outputs) and one spot preemption. Real: the runner, "
    "SSH, git, tmux, the venv, the pod-side launcher and the training process."
)
# Settings of the caller's shell that must not reach the demo's runner (it has its own, all on loopback).
_DROP_PREFIXES = (
    "RT_",
    "RUNPOD_",
    "PULUMI_",
    "SSH_KEY_PATH",
    "REPO_",
    "TRAIN_SCRIPT",
    "DATA_DIR",
    "RUNNER_STATE_DIR",
    "POD_START_TIMEOUT",
    "TMUX",
)


class DemoError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    return waiting.wait_for(predicate, timeout, what, interval, error=DemoError)


def _source_of(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise DemoError(f"{module} is not installed: install runpod-trainer first")
    return Path(spec.origin)


def make_training_repo(repo: Path) -> None:
    """A committed git repo as a user's training repo is: Pulumi.yaml (the runner's project root),
    the config and the training script (the smoke trainer), on branch main."""
    (repo / "configs").mkdir(parents=True)
    (repo / "scripts").mkdir()
    (repo / "Pulumi.yaml").write_text("name: runpod-trainer-demo\nruntime: python\n")
    (repo / CONFIG).write_text(CONFIG_TEXT)
    shutil.copyfile(_source_of("remote.smoke_train"), repo / TRAIN_SCRIPT)
    identity = ["-c", "user.name=runpod-trainer demo", "-c", "user.email=demo@localhost", "-c", "commit.gpgsign=false"]
    for argv in (["init", "-q", "-b", BRANCH], ["add", "-A"], ["commit", "-q", "-m", "the demo's training repo"]):
        done = subprocess.run(["git", *identity, *argv], cwd=repo, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise DemoError(f"git {argv[0]} in the demo's training repo failed: {done.stderr.strip()}")


@dataclass
class DemoResult:
    runner_exit: int
    preemptions: int
    recoveries: int
    resumed_from: str | None
    pod_status: str
    pod_stopped_itself: bool

    @property
    def ok(self) -> bool:
        return (
            self.runner_exit == 0
            and self.preemptions >= 1
            and self.recoveries >= 1
            and self.pod_status == "EXITED"
            and self.pod_stopped_itself
        )


@dataclass
class Demo:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rt-demo-")))
    keep: bool = False
    session: str = field(default_factory=lambda: f"rt-demo-{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        self.workspace = self.root / "workspace"
        self.state_dir = self.root / "state"
        self.tmux_dir = self.root / "tmux"
        self.env_file = self.root / "demo.env"
        self.rp_env_file = self.root / "rp_environment"
        self.repo = self.root / "repo"
        self.sshd: Sshd | None = None
        self.fake: FakeRunPod | None = None
        self.pod_id = ""
        self.runner: subprocess.Popen | None = None

    # ---------------------------------------------------------------- the world
    def start(self) -> None:
        for d in (self.workspace, self.state_dir, self.tmux_dir, self.root / "sshd"):
            d.mkdir(parents=True, exist_ok=True)
        make_training_repo(self.repo)
        self.sshd = Sshd(root=self.root / "sshd")
        self.sshd.setup()
        self.fake = FakeRunPod(boot_seconds=1.0).start()
        self.fake.set_ssh_target(self.sshd.host, self.sshd.ports)
        vol = self.fake.add_volume(name="runpod-trainer-dev-volume", size=100, data_center="EU-RO-1")
        # Stopped, as a pod is between runs: the runner resumes it (spot, podBidResume) first.
        pod = self.fake.add_pod(name="runpod-trainer-dev", status="EXITED", volume_id=vol.id, bid_per_gpu=0.35)
        self.pod_id = pod.id
        stub = StubPulumi.create(self.root / "pulumi")
        stub.set(
            outputs={
                **SAMPLE_OUTPUTS,
                "pod_id": pod.id,
                "volume_id": vol.id,
                "workspace": str(self.workspace),
                "ssh_user": self.sshd.user,
                "ssh_host": None,
                "ssh_port": None,
                "cost_per_hr": 0.0,
            }
        )
        # The pod's own /etc/rp_environment: its id and pod-scoped key, read on the pod side only (self-stop).
        self.rp_env_file.write_text(
            f'export RUNPOD_POD_ID="{pod.id}"\nexport RUNPOD_API_KEY="{pod.api_key}"\n'
            f'export RUNPOD_REST_URL="{self.fake.rest_url}"\n'
        )
        self.rp_env_file.chmod(0o600)
        settings = {
            **self.fake.env(),
            "SSH_KEY_PATH": self.sshd.key_path,
            "PULUMI_BINARY": str(stub.path),
            "REPO_URL": str(self.repo),
            "REPO_BRANCH": BRANCH,
            "TRAIN_SCRIPT": TRAIN_SCRIPT,
            "RUNNER_STATE_DIR": str(self.state_dir),
            "POD_START_TIMEOUT": "60",
        }
        self.env_file.write_text("".join(f"{k}='{v}'\n" for k, v in settings.items()))
        self.env_file.chmod(0o600)

    def close(self) -> None:
        if self.runner is not None and self.runner.poll() is None:
            self.runner.send_signal(signal.SIGINT)
            try:
                self.runner.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.runner.kill()
        self._kill_container()
        subprocess.run(["tmux", "kill-server"], env=private_tmux_env(self.tmux_dir), capture_output=True)
        if self.fake is not None:
            self.fake.close()
        if self.sshd is not None:
            self.sshd.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---------------------------------------------------------------- the pod's side
    def state(self) -> dict:
        try:
            return json.loads((self.workspace / ".runner" / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def complete_checkpoints(self) -> list[str]:
        found = self.workspace.glob("*/checkpoints/demo/checkpoint-*/trainer_state.json")
        return sorted((p.parent.name for p in found), key=lambda n: int(n.split("-")[1]))

    def _container(self) -> list[int]:
        sshd = self.sshd.pid if self.sshd is not None else None
        return processes_under(self.root, spare=("tail", "sshd"), spare_pids=runner_side(sshd))

    def _kill_container(self) -> None:
        for pid in self._container():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def preempt(self) -> None:
        """As RunPod does it: SIGTERM to the container (5 s grace), SIGKILL, SSH sessions gone, API says Outbid."""
        assert self.sshd is not None and self.fake is not None
        kill_container(self.state().get("supervisor_pid"), self._container)
        subprocess.run(
            ["tmux", "kill-session", "-t", f"={self.session}"],
            capture_output=True,
            env=private_tmux_env(self.tmux_dir),
        )
        self.sshd.drop_connections()
        self.fake.preempt(self.pod_id)

    # ---------------------------------------------------------------- the run
    def runner_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES)}
        env.update(
            {
                "RT_SESSION": self.session,
                "RT_RP_ENV_FILE": str(self.rp_env_file),
                "TMUX_TMPDIR": str(self.tmux_dir),
                "PYTHONPATH": str(_source_of("runner").parents[1]),  # this runner, wherever it is installed
                # The demo's pod goes away with the demo: a Ctrl-C that detaches leaves no watcher behind.
                "RUNNER_WATCH": "0",
            }
        )
        return env

    def run(self, timeout: float = 150.0) -> DemoResult:
        assert self.fake is not None
        argv = [sys.executable, "-m", "runner", "--env-file", str(self.env_file), "train", "--config", CONFIG]
        say(f"python -m runner train --config {CONFIG}   (pod {self.pod_id}: stopped spot pod, resumed first)")
        self.runner = subprocess.Popen(argv, cwd=str(self.repo), env=self.runner_env(), stdin=subprocess.DEVNULL)
        first = wait_for(
            lambda: self.complete_checkpoints() or self.runner.poll() is not None,
            timeout,
            "the first complete checkpoint",
        )
        if first is True:
            raise DemoError(f"the runner exited {self.runner.returncode} before the first checkpoint")
        say(f"injecting a spot preemption after {first[-1]}: the container is killed, SSH drops, RunPod says 'Outbid'")
        self.preempt()
        try:
            code = self.runner.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DemoError(f"the runner did not finish within {timeout:g}s") from None
        return self.result(code)

    def result(self, code: int) -> DemoResult:
        assert self.fake is not None
        records = sorted((self.state_dir / "dev" / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
        rec = json.loads(records[-1].read_text()) if records else {}
        resumed = next((a.get("resume_from") for a in rec.get("attempts", [])[1:] if a.get("resume_from")), None)
        pod = self.fake.pods[self.pod_id]
        stops = [r for r in self.fake.requests if r.action == "stop"]
        return DemoResult(
            code,
            int(rec.get("preemptions") or 0),
            int(rec.get("recoveries") or 0),
            resumed.rstrip("/").rsplit("/", 1)[-1] if resumed else None,
            pod.status,
            any(r.auth == f"pod:{self.pod_id}" for r in stops),
        )


def _interrupt_on_hangup() -> None:
    """A closed terminal or tmux pane (SIGHUP) and SIGTERM end the demo as Ctrl-C does, so its cleanup
    still stops the sshd, the fake API and the tmux server and removes the temp directory."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, interrupt)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m standins.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="keep the temp directory (workspace, log, run record)")
    args = p.parse_args(argv)
    _interrupt_on_hangup()
    say(SIMULATED)
    demo = Demo(keep=args.keep)
    started = time.monotonic()
    try:
        demo.start()
        result = demo.run()
    except DemoError as e:
        say(f"failed: {e}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; everything the demo started is being removed")
        return 130
    finally:
        demo.close()
    stopped = "stopped itself (its own API call)" if result.pod_stopped_itself else "did not stop itself"
    say(
        f"runner exited {result.runner_exit}; preemptions {result.preemptions}, automatic recoveries "
        f"{result.recoveries}, resumed from {result.resumed_from or 'nothing'}; the pod is {result.pod_status}, "
        f"{stopped}; {time.monotonic() - started:.0f}s in all" + (f"; kept {demo.root}" if args.keep else "")
    )
    if not result.ok:
        say("FAILED: expected exit 0, a recovered preemption and the pod stopped by itself")
        return result.runner_exit or 1
    say("OK: a preemption was recovered and training resumed from its newest complete checkpoint, without you")
    return 0


if __name__ == "__main__":
    sys.exit(main())
