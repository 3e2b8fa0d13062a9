"""runner/pod/stack_cache.py: an unchanged local-backend stack costs no `pulumi` run; the cache is
private, keyed on the state file, and never holds a secret output."""

from __future__ import annotations

import gzip
import json
import stat
from pathlib import Path

import pytest

from runner.pod.stack import read_outputs_cached
from runner.pod.stack_cache import SECRET_SIG_KEY, SECRET_SIG_VALUE, state_file
from standins.pulumi_cli import SAMPLE_OUTPUTS, StubPulumi

SECRET_TEXT = "s3cr3t-token-value-xyz"


def checkpoint(outputs: dict, secret: tuple[str, ...] = ()) -> dict:
    """A Pulumi local-backend state file: the stack resource's outputs, secrets encrypted."""
    shown = {
        k: ({SECRET_SIG_KEY: SECRET_SIG_VALUE, "ciphertext": "v1:AAAA"} if k in secret else v)
        for k, v in outputs.items()
    }
    return {
        "version": 3,
        "checkpoint": {
            "stack": "organization/proj/dev",
            "latest": {
                "resources": [
                    {
                        "urn": "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev",
                        "type": "pulumi:pulumi:Stack",
                        "outputs": shown,
                    }
                ]
            },
        },
    }


class World:
    def __init__(self, tmp: Path, stub: StubPulumi):
        self.stub = stub
        self.project = tmp / "project"
        self.project.mkdir()
        (self.project / "Pulumi.yaml").write_text("name: proj\nruntime: python\n")
        self.backend = tmp / "backend"
        self.state = self.backend / ".pulumi" / "stacks" / "proj" / "dev.json"
        self.state.parent.mkdir(parents=True)
        self.cache_dir = tmp / "state" / "dev"
        self.env = {"PULUMI_BACKEND_URL": f"file://{self.backend}", "HOME": str(tmp / "home"), "PATH": "/usr/bin:/bin"}

    def write(self, outputs: dict, secret: tuple[str, ...] = ()) -> None:
        self.stub.set(outputs=outputs)
        self.state.write_text(json.dumps(checkpoint(outputs, secret)))

    def read(self):
        return read_outputs_cached(
            "dev", cache_dir=self.cache_dir, project_root=self.project, env=self.env, pulumi=str(self.stub.path)
        )

    def pulumi_runs(self) -> int:
        return sum(1 for c in self.stub.calls() if c["argv"][:2] == ["stack", "output"])

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / "stack_outputs.json"


@pytest.fixture
def world(tmp_path, stub_pulumi) -> World:
    return World(tmp_path, stub_pulumi)


def test_an_unchanged_stack_is_read_once_then_from_the_cache(world):
    world.write({**SAMPLE_OUTPUTS, "pod_id": "pod-a"})
    first = world.read()
    assert first.pod_id == "pod-a" and world.pulumi_runs() == 1
    second = world.read()
    assert second == first and world.pulumi_runs() == 1


def test_a_changed_state_file_runs_pulumi_again(world):
    world.write({**SAMPLE_OUTPUTS, "pod_id": "pod-a"})
    world.read()
    world.write({**SAMPLE_OUTPUTS, "pod_id": "pod-b"})  # a `pulumi up` made a new pod
    assert world.read().pod_id == "pod-b" and world.pulumi_runs() == 2
    assert world.read().pod_id == "pod-b" and world.pulumi_runs() == 2


def test_the_cache_is_private_and_holds_no_secret_output(world):
    world.write({**SAMPLE_OUTPUTS, "pod_id": "pod-a", "api_token": SECRET_TEXT}, secret=("api_token",))
    world.read()
    assert world.cache_file.is_file()
    assert stat.S_IMODE(world.cache_file.stat().st_mode) == 0o600
    text = world.cache_file.read_text()
    assert SECRET_TEXT not in text and "api_token" not in text
    assert world.read().pod_id == "pod-a" and world.pulumi_runs() == 1


def test_a_needed_output_that_is_secret_is_never_cached(world):
    world.write({**SAMPLE_OUTPUTS, "pod_id": "pod-a", "ssh_host": SECRET_TEXT}, secret=("ssh_host",))
    assert world.read().ssh_host == SECRET_TEXT
    assert not world.cache_file.exists()
    world.read()
    assert world.pulumi_runs() == 2


def test_another_backend_always_runs_pulumi(world):
    world.write({**SAMPLE_OUTPUTS, "pod_id": "pod-a"})
    world.env["PULUMI_BACKEND_URL"] = "https://api.pulumi.com"
    world.read()
    world.read()
    assert world.pulumi_runs() == 2 and not world.cache_file.exists()


def test_a_torn_cache_file_is_ignored(world):
    world.write({**SAMPLE_OUTPUTS, "pod_id": "pod-a"})
    world.read()
    world.cache_file.write_text("{not json")
    assert world.read().pod_id == "pod-a" and world.pulumi_runs() == 2


def test_state_file_found_from_pulumi_yaml_and_from_the_login(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: proj\nruntime: python\nbackend:\n  url: file://./state\n")
    gz = project / "state" / ".pulumi" / "stacks" / "proj" / "dev.json.gz"
    gz.parent.mkdir(parents=True)
    gz.write_bytes(gzip.compress(b"{}"))
    assert state_file(project, "dev", {"HOME": str(tmp_path)}) == gz

    (project / "Pulumi.yaml").write_text("name: proj\nruntime: python\n")
    home = tmp_path / "home"
    (home / ".pulumi").mkdir(parents=True)
    (home / ".pulumi" / "credentials.json").write_text(json.dumps({"current": "file://~"}))
    legacy = home / ".pulumi" / "stacks" / "dev.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("{}")
    assert state_file(project, "dev", {"HOME": str(home)}) == legacy
    assert state_file(project, "organization/proj/dev", {"HOME": str(home)}) == legacy
    (home / ".pulumi" / "credentials.json").write_text(json.dumps({"current": "https://api.pulumi.com"}))
    assert state_file(project, "dev", {"HOME": str(home)}) is None
