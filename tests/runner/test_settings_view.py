"""`runner settings` (each effective setting with its source, secrets redacted), RunPod's own
~/.runpod/config.toml as the API key's last source, and suggestions for mistyped .runpod.env keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.settings import KEYS
from tests.runner.test_settings import load, write_env

ROOT = Path(__file__).resolve().parents[2]
KEY = "rpa_VIEWKEY1234567890abcdef"
S3_SECRET = "rps_VIEWSECRET0987654321"


def runpod_config(home: Path, text: str) -> Path:
    path = home / ".runpod" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path) -> tuple[Path, dict[str, str]]:
    """A project dir with a .runpod.env, and an environment with none of the runner's settings."""
    (tmp_path / "Pulumi.yaml").write_text("name: t\n")
    write_env(
        tmp_path,
        f"RUNPOD_API_KEY={KEY}\nREPO_URL=https://user:t0ken@git.example/me/repo.git\n"
        f"RUNPOD_S3_SECRET_KEY={S3_SECRET}\n",
    )
    env = {k: v for k, v in os.environ.items() if k not in KEYS and not k.startswith("RT_")}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT), REPO_BRANCH="dev")
    return tmp_path, env


def run(project: tuple[Path, dict[str, str]], *argv: str) -> subprocess.CompletedProcess:
    cwd, env = project
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_every_setting_with_its_source_and_no_secret(project):
    done = run(project, "--stack", "prod", "settings")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert list(lines) == list(KEYS)
    env_file = str(project[0] / ".runpod.env")
    assert lines["RUNPOD_API_KEY"].split()[1:] == ["********", env_file]
    assert lines["REPO_URL"].split()[1:] == ["https://***@git.example/me/repo.git", env_file]
    assert lines["REPO_BRANCH"].split()[1:] == ["dev", "environment"]
    assert lines["PULUMI_STACK"].split()[1:] == ["prod", "command", "line"]
    assert lines["SSH_KEY_PATH"].split()[1:] == ["~/.ssh/id_ed25519", "default"]
    assert lines["RUNPOD_GRAPHQL_URL"].split()[1:] == ["(not", "set)"]
    assert KEY not in done.stdout + done.stderr and S3_SECRET not in done.stdout and "t0ken" not in done.stdout


def test_settings_as_json(project):
    done = run(project, "settings", "--json")
    body = json.loads(done.stdout)
    assert body["schema_version"] == 1 and body["env_file"] == str(project[0] / ".runpod.env")
    assert body["settings"]["RUNPOD_S3_SECRET_KEY"] == {"value": "********", "source": body["env_file"]}
    assert body["settings"]["DATA_DIR"] == {"value": "data", "source": "default"}
    assert body["settings"]["REPO_URL"]["value"] == "https://***@git.example/me/repo.git"
    assert KEY not in done.stdout and S3_SECRET not in done.stdout


def test_runpods_own_config_gives_the_key_when_no_setting_does(tmp_path):
    home = tmp_path / "home"
    config = runpod_config(
        home, '[other]\napi_key = "rpa_not_this_one"\n\n[default]\napi_key = "rpa_FROM_RUNPOD_CLI_42"\n'
    )
    settings, _ = load(tmp_path, {"HOME": str(home)})
    assert settings.api_key == "rpa_FROM_RUNPOD_CLI_42" and settings.sources["RUNPOD_API_KEY"] == str(config)

    write_env(tmp_path, f"RUNPOD_API_KEY={KEY}\n")  # any setting wins over RunPod's file
    settings, _ = load(tmp_path, {"HOME": str(home)})
    assert settings.api_key == KEY and settings.sources["RUNPOD_API_KEY"] == str(tmp_path / ".runpod.env")


@pytest.mark.parametrize("text", ["", "[default]\n", "not toml = = at all\n", '[default]\napi_key = ""\n'])
def test_no_usable_key_in_runpods_config_is_no_key(tmp_path, text):
    home = tmp_path / "home"
    runpod_config(home, text)
    settings, _ = load(tmp_path, {"HOME": str(home)})
    assert settings.api_key is None and "RUNPOD_API_KEY" not in settings.sources


def test_a_mistyped_key_gets_the_closest_known_one(tmp_path):
    write_env(tmp_path, f"RUNPOD_APIKEY={KEY}\nREPO_BRANCHES=main\nWHATEVER=1\n")
    _, warnings = load(tmp_path)
    assert any(w.endswith("unknown setting RUNPOD_APIKEY ignored; did you mean RUNPOD_API_KEY?") for w in warnings)
    assert any(w.endswith("unknown setting REPO_BRANCHES ignored; did you mean REPO_BRANCH?") for w in warnings)
    assert any("unknown setting WHATEVER ignored (known: RUNPOD_API_KEY," in w for w in warnings)
