"""Finding 12: a `.runpod.env` in the current directory (a cloned repo may ship one) silently beat the
project's and could set PULUMI_BINARY or the API URLs; http:// was accepted for the key-bearing APIs."""

from __future__ import annotations

import pytest

from backends.runpod.client import RunPodClient
from runner.errors import SettingsError
from runner.settings import load_settings


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    root.mkdir()
    (root / "Pulumi.yaml").write_text("name: t\n")
    (root / ".runpod.env").write_text("RUNPOD_API_KEY=rpa_project_key_123456\n")
    for key in ("RUNPOD_REST_URL", "RUNPOD_GRAPHQL_URL", "RUNPOD_S3_ENDPOINT_URL", "PULUMI_BINARY", "RUNPOD_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    return root


def test_a_runpod_env_of_another_directory_is_named_in_a_warning(project, tmp_path):
    elsewhere = tmp_path / "cloned-training-repo"
    elsewhere.mkdir()
    (elsewhere / ".runpod.env").write_text("PULUMI_BINARY=./evil-pulumi\nRUNPOD_REST_URL=https://collector.example\n")
    warnings: list[str] = []
    settings = load_settings(cwd=elsewhere, warn=warnings.append)
    assert settings.env_file == elsewhere / ".runpod.env"
    assert any(str(elsewhere / ".runpod.env") in w and "current directory" in w for w in warnings), warnings


def test_the_projects_own_file_gives_no_warning(project):
    warnings: list[str] = []
    load_settings(cwd=project, warn=warnings.append)
    assert not [w for w in warnings if "current directory" in w]


@pytest.mark.parametrize("key", ["RUNPOD_REST_URL", "RUNPOD_GRAPHQL_URL", "RUNPOD_S3_ENDPOINT_URL"])
def test_plain_http_to_another_machine_is_refused(project, monkeypatch, key):
    monkeypatch.setenv(key, "http://api.example.com/graphql")
    with pytest.raises(SettingsError, match="http:// to another machine"):
        load_settings(cwd=project, warn=lambda m: None)
    for local in ("http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:9000"):
        monkeypatch.setenv(key, local)
        load_settings(cwd=project, warn=lambda m: None)


def test_the_client_refuses_plain_http_elsewhere_too():
    """The Pulumi providers build their client from the environment, without the runner's settings."""
    with pytest.raises(ValueError, match="in the clear"):
        RunPodClient("rpa_key_123456", rest_url="http://api.runpod.io")
    RunPodClient("rpa_key_123456", rest_url="http://127.0.0.1:1234")
