"""Settings: .runpod.env parsing, precedence (file < env < flags), permission warning, key masking."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runner.errors import SettingsError
from runner.settings import KEYS, load_settings, parse_env_text

KEY = "rpa_TESTKEY1234567890abcdef"


def write_env(dir: Path, text: str, mode: int = 0o600) -> Path:
    p = dir / ".runpod.env"
    p.write_text(text)
    p.chmod(mode)
    return p


def load(dir: Path, environ=None, **kw):
    # A Pulumi.yaml makes `dir` the project root, so a developer's own .runpod.env is never read.
    (dir / "Pulumi.yaml").touch()
    warnings: list[str] = []
    s = load_settings(kw.pop("env_file", None), environ=environ or {}, cwd=dir, warn=warnings.append, **kw)
    return s, warnings


def private_key(dir: Path, name: str = "id_test") -> Path:
    """A real key: preflight loads it as the SSH connection will (a header alone is refused)."""
    p = dir / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(p)], check=True, capture_output=True)
    return p


def test_parse_forms():
    text = """
# comment
export RUNPOD_API_KEY="abc \\"q\\" def"
REPO_URL='https://x/y.git#not-a-comment'
REPO_BRANCH = dev   # trailing comment
TRAIN_SCRIPT=a#b
EMPTY=
"""
    v = parse_env_text(text)
    assert v == {
        "RUNPOD_API_KEY": 'abc "q" def',
        "REPO_URL": "https://x/y.git#not-a-comment",
        "REPO_BRANCH": "dev",
        "TRAIN_SCRIPT": "a#b",
        "EMPTY": "",
    }


@pytest.mark.parametrize("line", ["JUST_A_WORD", "1BAD=x", "KEY='unterminated", 'KEY="a" trailing'])
def test_parse_errors_name_the_line_not_the_value(line):
    with pytest.raises(SettingsError) as e:
        parse_env_text(f"# ok\n{line}\n", source="f.env")
    assert "f.env:2" in e.value.message
    assert "unterminated" not in e.value.message and "trailing" not in e.value.message


def test_file_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    write_env(tmp_path, f"REPO_URL=$(touch {marker})\nREPO_BRANCH=`touch {marker}`\n")
    s, _ = load(tmp_path)
    assert not marker.exists()
    assert s.repo_url == f"$(touch {marker})"


def test_defaults_without_file(tmp_path):
    s, warnings = load(tmp_path)
    assert s.env_file is None and warnings == []
    assert s.api_key is None
    assert s.stack == "dev"
    assert s.repo_branch == "main"
    assert s.train_script == "scripts/train.py"
    assert s.ssh_key_path == Path("~/.ssh/id_ed25519").expanduser()
    assert s.state_dir == Path("~/.runpod-trainer").expanduser()
    assert s.pod_start_timeout_s == 900
    assert s.rest_url is None and s.graphql_url is None


def test_precedence_file_env_flags(tmp_path):
    write_env(tmp_path, f"RUNPOD_API_KEY={KEY}\nPULUMI_STACK=fromfile\nREPO_BRANCH=filebranch\nDATA_DIR=d1\n")
    s, _ = load(
        tmp_path,
        environ={"PULUMI_STACK": "fromenv", "REPO_BRANCH": "", "DATA_DIR": "/abs/data"},
        overrides={"PULUMI_STACK": "fromflag", "REPO_BRANCH": None},
    )
    assert s.api_key == KEY
    assert s.stack == "fromflag"
    assert s.sources["PULUMI_STACK"] == "command line"
    assert s.repo_branch == "filebranch"  # empty env value does not override
    assert s.data_dir == Path("/abs/data")
    s2, _ = load(tmp_path, environ={"PULUMI_STACK": "fromenv"})
    assert s2.stack == "fromenv" and s2.sources["PULUMI_STACK"] == "environment"


def test_explicit_env_file_must_exist(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load(tmp_path, env_file="missing.env")


def test_unreadable_file_is_a_clear_error(tmp_path):
    (tmp_path / ".runpod.env").mkdir()  # a directory: unreadable as a file even for root
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load(tmp_path)


def test_permission_warning(tmp_path):
    p = write_env(tmp_path, f"RUNPOD_API_KEY={KEY}\n", mode=0o644)
    _, warnings = load(tmp_path)
    assert len(warnings) == 1 and f"chmod 600 {p}" in warnings[0] and "0644" in warnings[0]
    assert KEY not in warnings[0]
    p.chmod(0o600)
    _, warnings = load(tmp_path)
    assert warnings == []


def test_unknown_key_warns(tmp_path):
    write_env(tmp_path, "RUNPOD_APIKEY=typo\n")
    _, warnings = load(tmp_path)
    assert any("unknown setting RUNPOD_APIKEY" in w for w in warnings)
    assert not any("typo" in w for w in warnings)


def test_api_key_is_masked(tmp_path):
    write_env(tmp_path, f"RUNPOD_API_KEY={KEY}\nPULUMI_CONFIG_PASSPHRASE=hunter2hunter2\n")
    s, _ = load(tmp_path)
    for text in (repr(s), str(s), f"{s}", f"{s!r}"):
        assert KEY not in text and "hunter2hunter2" not in text
        assert "api_key='***'" in text
    assert s.secrets() == (KEY, "hunter2hunter2")


def test_missing_api_key_error(tmp_path):
    s, _ = load(tmp_path)
    with pytest.raises(SettingsError, match=r"set RUNPOD_API_KEY in \.runpod\.env"):
        s.require_api_key()


def test_placeholder_api_key_rejected(tmp_path):
    write_env(tmp_path, "RUNPOD_API_KEY=<your-runpod-api-key>\n")
    s, _ = load(tmp_path)
    with pytest.raises(SettingsError, match="placeholder"):
        s.require_api_key()


def test_ssh_key_checks(tmp_path):
    write_env(tmp_path, f"RUNPOD_API_KEY={KEY}\nSSH_KEY_PATH=nokey\n")
    s, _ = load(tmp_path)
    with pytest.raises(SettingsError, match="does not exist.*ssh-keygen"):
        s.require_ssh_key()
    with pytest.raises(SettingsError, match="does not exist"):
        s.preflight()

    (tmp_path / "k.pub").write_text("ssh-ed25519 AAAA me\n")
    s, _ = load(tmp_path, environ={"SSH_KEY_PATH": str(tmp_path / "k.pub")})
    with pytest.raises(SettingsError, match="public key"):
        s.require_ssh_key()

    (tmp_path / "notakey").write_text("hello\n")
    s, _ = load(tmp_path, environ={"SSH_KEY_PATH": "notakey"})
    with pytest.raises(SettingsError, match="does not look like a private key"):
        s.require_ssh_key()

    s, _ = load(tmp_path, environ={"SSH_KEY_PATH": str(tmp_path)})
    with pytest.raises(SettingsError, match="not a file"):
        s.require_ssh_key()

    key = private_key(tmp_path)
    s, _ = load(tmp_path, environ={"SSH_KEY_PATH": "id_test"})  # relative to cwd
    assert s.require_ssh_key() == key
    s.preflight()


@pytest.mark.parametrize(
    "env,match",
    [
        ({"PULUMI_STACK": "bad stack!"}, "not a valid stack name"),
        ({"POD_START_TIMEOUT": "soon"}, "POD_START_TIMEOUT"),
        ({"POD_START_TIMEOUT": "-5"}, "POD_START_TIMEOUT"),
        ({"RUNPOD_REST_URL": "api.runpod.io"}, "RUNPOD_REST_URL"),
    ],
)
def test_invalid_values(tmp_path, env, match):
    with pytest.raises(SettingsError, match=match):
        load(tmp_path, environ=env)


def test_subprocess_env_carries_key_and_urls(tmp_path):
    write_env(tmp_path, f"RUNPOD_API_KEY={KEY}\nRUNPOD_REST_URL=http://127.0.0.1:1\n")
    s, _ = load(tmp_path)
    env = s.subprocess_env({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": "http://127.0.0.1:1"}


def test_example_file_documents_every_key():
    root = Path(__file__).resolve().parents[2]
    text = (root / ".runpod.env.example").read_text()
    lines = text.splitlines()
    for key in KEYS:
        idx = next((i for i, l in enumerate(lines) if l.lstrip("# ").startswith(f"{key}=")), None)
        assert idx is not None, f"{key} missing from .runpod.env.example"
        assert lines[idx - 1].startswith("#"), f"{key} has no comment line above it"
    # The example parses, and nothing in it is a real secret.
    values = parse_env_text(text)
    assert values["RUNPOD_API_KEY"].startswith("<")


def test_project_root_found_from_subdir(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: x\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    write_env(tmp_path, "PULUMI_STACK=rootfile\n")
    s = load_settings(environ={}, cwd=sub, warn=lambda m: None)
    assert s.project_root == tmp_path
    assert s.env_file == tmp_path / ".runpod.env"  # falls back to the project root's file
    assert s.stack == "rootfile"
    assert s.data_dir == tmp_path / "data"
    assert os.path.isabs(s.state_dir)
