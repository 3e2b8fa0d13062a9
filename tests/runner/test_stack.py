"""Stack outputs and `pulumi up` through a stub `pulumi` executable."""

from __future__ import annotations

import json

import pytest

from runner.errors import NoStackOutputs, PulumiNotInstalled, StackError
from runner.exitcodes import ExitCode
from runner.pod.stack import read_outputs, refresh_and_up, replace_and_up
from runner.pod.stack_outputs import StackOutputs
from standins.pulumi_cli import POD_URN, SAMPLE_OUTPUTS

SECRET = "rpa_SECRETVALUE_0123456789"


def test_reads_outputs_with_secrets_in_project_root(stub_pulumi, tmp_path):
    stub_pulumi.set(outputs=SAMPLE_OUTPUTS, expect_api_key=SECRET)
    out = read_outputs("dev", project_root=tmp_path, env={"PATH": "/usr/bin:/bin", "RUNPOD_API_KEY": SECRET})
    assert out == StackOutputs(stack="dev", **SAMPLE_OUTPUTS)
    assert out.is_spot and out.ssh_port == 40022 and out.bid_per_gpu == 0.35
    assert out.pod_urn == POD_URN
    [call] = stub_pulumi.calls()
    argv = call["argv"]
    assert argv[:6] == ["stack", "output", "--json", "--show-secrets", "--stack", "dev"]
    assert "--show-secrets" in argv and "--json" in argv
    assert argv[argv.index("--stack") + 1] == "dev"
    assert call["cwd"] == str(tmp_path)
    assert call["api_key_matches"] is True
    assert call["stdin_is_tty"] is False


def test_optional_keys_missing_get_defaults(stub_pulumi, tmp_path):
    stub_pulumi.set(outputs={"pod_id": "p1", "ssh_port": "2201", "gpu_count": 2.0})
    out = read_outputs("prod", project_root=tmp_path)
    assert out.stack == "prod" and out.pod_id == "p1"
    assert out.ssh_port == 2201 and out.gpu_count == 2
    assert out.market == "spot" and out.ssh_user == "root" and out.workspace == "/workspace"
    assert out.bid_per_gpu is None and out.ssh_host is None and out.spot_fallback == "fail"
    assert out.pod_urn is None  # a stack from before the pod_urn output


def test_pulumi_missing(tmp_path):
    with pytest.raises(PulumiNotInstalled) as e:
        read_outputs("dev", project_root=tmp_path, pulumi=str(tmp_path / "no-such-pulumi"))
    assert "pulumi login --local" in e.value.message and "Install" in e.value.message
    assert e.value.exit_code == ExitCode.STACK


def test_pulumi_missing_via_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_BINARY", "definitely-not-a-pulumi-binary")
    with pytest.raises(PulumiNotInstalled, match="definitely-not-a-pulumi-binary"):
        read_outputs("dev", project_root=tmp_path)


def test_no_outputs_yet(stub_pulumi, tmp_path):
    stub_pulumi.set(outputs={})
    with pytest.raises(NoStackOutputs, match=r"run `pulumi up` first"):
        read_outputs("dev", project_root=tmp_path)


def test_outputs_without_pod_id(stub_pulumi, tmp_path):
    stub_pulumi.set(outputs={"volume_id": "v1"})
    with pytest.raises(NoStackOutputs, match="no pod_id"):
        read_outputs("dev", project_root=tmp_path)


def test_malformed_output_never_echoed(stub_pulumi, tmp_path):
    stub_pulumi.set(stdout=f'{{"pod_id": "p", "token": "{SECRET}"')  # truncated JSON holding a secret
    with pytest.raises(StackError) as e:
        read_outputs("dev", project_root=tmp_path)
    assert "not JSON" in e.value.message and SECRET not in e.value.message


@pytest.mark.parametrize(
    "outputs,key",
    [
        ({"pod_id": "p", "ssh_port": "abc"}, "ssh_port"),
        ({"pod_id": "p", "bid_per_gpu": "cheap"}, "bid_per_gpu"),
        ({"pod_id": "p", "ssh_host": 7}, "ssh_host"),
        ({"pod_id": "p", "market": "auction"}, "market"),
    ],
)
def test_wrong_types(stub_pulumi, tmp_path, outputs, key):
    stub_pulumi.set(outputs=outputs)
    with pytest.raises(StackError, match=key):
        read_outputs("dev", project_root=tmp_path)


def test_json_array_is_malformed(stub_pulumi, tmp_path):
    stub_pulumi.set(stdout=json.dumps([1, 2]))
    with pytest.raises(StackError, match="not print a JSON object"):
        read_outputs("dev", project_root=tmp_path)


def test_masked_secret_value(stub_pulumi, tmp_path):
    stub_pulumi.set(outputs={"pod_id": "p", "image": "[secret]"})
    with pytest.raises(StackError, match="PULUMI_CONFIG_PASSPHRASE"):
        read_outputs("dev", project_root=tmp_path)


@pytest.mark.parametrize(
    "stderr,match",
    [
        ("error: no stack named 'dev' found\n", r"pulumi stack init dev"),
        (
            "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions\n",
            "pulumi login --local",
        ),
        ("error: incorrect passphrase\n", "PULUMI_CONFIG_PASSPHRASE"),
    ],
)
def test_known_failures_are_explained(stub_pulumi, tmp_path, stderr, match):
    stub_pulumi.set(stderr=stderr, exit_code=255)
    with pytest.raises(StackError, match=match):
        read_outputs("dev", project_root=tmp_path)


def test_unknown_failure_shows_redacted_stderr(stub_pulumi, tmp_path):
    stub_pulumi.set(stderr=f"error: something odd with {SECRET}\n", exit_code=1)
    with pytest.raises(StackError) as e:
        read_outputs("dev", project_root=tmp_path, secrets=[SECRET])
    assert "something odd" in e.value.message and SECRET not in e.value.message


def test_refresh_and_up_streams_and_passes_flags(stub_pulumi, tmp_path):
    stub_pulumi.set(up_lines=["Updating (dev)", f"key {SECRET}", "Resources: 1 updated"])
    lines: list[str] = []
    refresh_and_up("dev", project_root=tmp_path, on_line=lines.append, secrets=[SECRET])
    assert lines == ["Updating (dev)", "key ***", "Resources: 1 updated"]
    [call] = stub_pulumi.calls()
    argv = call["argv"]
    assert argv[0] == "up"
    for flag in ("--refresh", "--yes", "--skip-preview"):
        assert flag in argv
    assert argv[argv.index("--stack") + 1] == "dev"
    assert call["cwd"] == str(tmp_path)


def test_refresh_and_up_failure(stub_pulumi, tmp_path):
    stub_pulumi.set(up_lines=["Updating (dev)", "error: pod create failed: no capacity"], up_exit_code=255)
    with pytest.raises(StackError) as e:
        refresh_and_up("dev", project_root=tmp_path, on_line=lambda _l: None)
    assert "no capacity" in e.value.message and "exit 255" in e.value.message


def test_refresh_and_up_pulumi_missing(tmp_path):
    with pytest.raises(PulumiNotInstalled):
        refresh_and_up("dev", project_root=tmp_path, pulumi=str(tmp_path / "nope"))


def test_replace_and_up_passes_the_urn_streams_and_redacts(stub_pulumi, tmp_path):
    stub_pulumi.set(outputs=SAMPLE_OUTPUTS, up_lines=["Updating (dev)", f"key {SECRET}", "Resources: 1 replaced"])
    lines: list[str] = []
    replace_and_up("dev", POD_URN, project_root=tmp_path, on_line=lines.append, secrets=[SECRET])
    assert lines == ["Updating (dev)", "key ***", "Resources: 1 replaced"]
    [call] = stub_pulumi.calls()
    argv = call["argv"]
    assert argv[:4] == ["up", "--refresh", "--yes", "--skip-preview"]
    assert argv[argv.index("--replace") + 1] == POD_URN and call["replace"] == POD_URN
    assert argv[argv.index("--stack") + 1] == "dev" and "--non-interactive" in argv
    assert call["cwd"] == str(tmp_path) and call["stdin_is_tty"] is False


def test_replace_and_up_failure_is_explained_without_secrets(stub_pulumi, tmp_path):
    stub_pulumi.set(outputs=SAMPLE_OUTPUTS, up_lines=[f"error: create failed for {SECRET}"], up_exit_code=255)
    with pytest.raises(StackError) as e:
        replace_and_up("dev", POD_URN, project_root=tmp_path, on_line=lambda _l: None, secrets=[SECRET])
    assert "create failed" in e.value.message and "exit 255" in e.value.message
    assert SECRET not in e.value.message


def test_replace_and_up_refuses_what_is_not_a_urn(stub_pulumi, tmp_path):
    with pytest.raises(StackError, match="not a Pulumi URN"):
        replace_and_up("dev", "pod-abc123", project_root=tmp_path)
    assert stub_pulumi.calls() == []


def test_stub_rejects_a_urn_the_stack_does_not_have(stub_pulumi, tmp_path):
    # What Pulumi does with --replace of an unknown resource (keeps the recovery tests honest).
    stub_pulumi.set(outputs=SAMPLE_OUTPUTS)
    with pytest.raises(StackError, match="no resource named"):
        replace_and_up("dev", POD_URN.replace("::pod", "::other"), project_root=tmp_path, on_line=lambda _l: None)
