"""One user's machine for the doctor tests: a project that is also the training repo (REPO_URL = its
path), a private .runpod.env pointing at the fake RunPod API, an SSH key whose .pub the stack config
names, the stub `pulumi` with outputs naming a seeded pod and volume in EU-RO-1."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from remote.podside.bundle import start_command
from runner import cli
from runner.settings import KEYS
from standins.pulumi_cli import SAMPLE_OUTPUTS
from tests.remote_harness import git


def keygen(path: Path, passphrase: str = "") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True, capture_output=True
    )
    return path


@dataclass
class DoctorEnv:
    root: Path
    fake: object
    stub: object
    capsys: object

    def __post_init__(self) -> None:
        self.project = self.root / "project"
        self.project.mkdir()
        git(self.project, "init", "-q", "-b", "main")
        (self.project / "Pulumi.yaml").write_text("name: t\nruntime: python\n")
        (self.project / "configs").mkdir()
        (self.project / "configs" / "smoke.yaml").write_text("output_dir: checkpoints/smoke\nmax_steps: 4\n")
        git(self.project, "add", "-A")
        git(self.project, "commit", "-q", "-m", "initial")
        self.key = keygen(self.root / "id_ed25519")
        self.write_stack_config(public_key_path=f"{self.key}.pub")
        vol = self.fake.add_volume(name="t-dev-volume", size=50, data_center="EU-RO-1")
        pod = self.fake.add_pod(
            status="EXITED",
            volume_id=vol.id,
            bid_per_gpu=0.35,
            env={"PUBLIC_KEY": Path(f"{self.key}.pub").read_text().strip()},
            args=start_command(20 * 60, "/workspace"),
        )  # as `pulumi up` creates it
        self.pod_id, self.volume_id = pod.id, vol.id
        self.stub.set(outputs={**SAMPLE_OUTPUTS, "pod_id": pod.id, "volume_id": vol.id, "data_center": "EU-RO-1"})
        self.env_file = self.project / ".runpod.env"
        self.write_env()

    def write_stack_config(self, **kw: str) -> None:
        lines = ["config:", "  t:gpuType: NVIDIA GeForce RTX 4090", "  t:dataCenter: EU-RO-1", "  t:bidPerGpu: 0.35"]
        if "public_key_path" in kw:
            lines.append(f"  t:sshPublicKeyPath: {kw['public_key_path']}")
        lines.append("  t:token:\n    secure: v1:AAAA")
        (self.project / "Pulumi.dev.yaml").write_text("\n".join(lines) + "\n")

    def write_env(self, **overrides: str) -> None:
        values = {
            "RUNPOD_API_KEY": self.fake.api_key,
            "RUNPOD_REST_URL": self.fake.rest_url,
            "RUNPOD_GRAPHQL_URL": self.fake.graphql_url,
            "SSH_KEY_PATH": str(self.key),
            "REPO_URL": str(self.project),
            "REPO_BRANCH": "main",
            "PULUMI_CONFIG_PASSPHRASE": "a-passphrase",
            "RUNNER_STATE_DIR": str(self.root / "state"),
            "PULUMI_BINARY": str(self.stub.path),
        }
        values.update(overrides)
        self.env_file.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))
        self.env_file.chmod(0o600)

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main(["doctor", *argv])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def run_json(self, *argv: str) -> tuple[int, dict]:
        code, out, _ = self.run("--json", *argv)
        return code, json.loads(out)


@pytest.fixture
def doctor_env(tmp_path, monkeypatch, capsys, fake_runpod, stub_pulumi):
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    env = DoctorEnv(tmp_path, fake_runpod, stub_pulumi, capsys)
    monkeypatch.chdir(env.project)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh of this machine's user in play
    yield env
    assert os.environ.get("RUNPOD_API_KEY") is None


__all__ = ["DoctorEnv", "doctor_env", "keygen"]
