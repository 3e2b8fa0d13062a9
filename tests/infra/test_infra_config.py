"""Stack configuration: defaults, coercion, validation (all problems at once), loading via pulumi.Config."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pulumi
import pytest
import yaml

from infra.config_checks import ConfigError
from infra.stack_config import StackConfig, default_name, validate_public_key

ROOT = Path(__file__).resolve().parents[2]


def _pubkey(kind: str = "ssh-ed25519", comment: str = "me@laptop") -> str:
    name = kind.encode()
    blob = struct.pack(">I", len(name)) + name + struct.pack(">I", 32) + bytes(range(32))
    return f"{kind} {base64.b64encode(blob).decode()} {comment}"


PUB = _pubkey()
PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
BASE = {"repoName": "childs_speech_recog_chall", "sshPublicKey": PUB}


def _problems(values, **kw) -> list[str]:
    with pytest.raises(ConfigError) as err:
        StackConfig.from_mapping(values, **kw)
    return err.value.problems


def test_defaults_are_the_seed_values():
    cfg = StackConfig.from_mapping(BASE)
    assert cfg.gpu_type == "NVIDIA GeForce RTX 4090"
    assert cfg.gpu_count == 1
    assert cfg.bid_per_gpu == 0.50
    assert cfg.spot_fallback == "fail" and cfg.max_on_demand_price_per_gpu is None
    assert cfg.cloud_type == "SECURE"
    assert cfg.image == "runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204"
    assert cfg.container_disk_gb == 50
    assert cfg.ports == ("22/tcp",)
    assert cfg.create_timeout_s == 15 * 60
    assert cfg.pod_name is None and cfg.volume_name is None  # derived by the program
    assert cfg.pod_env() == {
        "HF_HOME": "/workspace/.cache/huggingface",
        "PYTHONPATH": "/workspace/childs_speech_recog_chall",
        "PUBLIC_KEY": PUB,
    }


def _as_pulumi_strings(config: dict) -> dict[str, str]:
    """What pulumi.Config sees: top-level scalars as strings, structured values as JSON."""
    out = {}
    for key, value in config.items():
        out[key] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return out


def test_pulumi_dev_yaml_is_valid_and_matches_the_seed(tmp_path):
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    raw = _as_pulumi_strings(doc["config"])
    assert not any(k.startswith("runpod:") for k in raw), "no API key in the committed stack file"
    values = {k.split(":", 1)[1]: v for k, v in raw.items()}
    read = []

    def fake_read(path: Path) -> str:
        read.append(path)
        return PUB + "\n"

    cfg = StackConfig.from_mapping(values, read_text=fake_read)
    assert read == [Path.home() / ".ssh" / "id_ed25519.pub"]  # ~ expanded
    assert (cfg.gpu_type, cfg.gpu_count, cfg.bid_per_gpu) == ("NVIDIA GeForce RTX 4090", 1, 0.5)
    assert (cfg.cloud_type, cfg.data_center, cfg.container_disk_gb) == ("SECURE", "EU-RO-1", 50)
    assert cfg.image == "runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204"
    assert cfg.ports == ("22/tcp",) and cfg.spot_fallback == "fail"
    assert cfg.ssh_public_key == PUB


def test_strings_from_pulumi_config_are_coerced():
    cfg = StackConfig.from_mapping(
        {
            **BASE,
            "gpuCount": "2",
            "bidPerGpu": "0.45",
            "volumeSizeGb": "4096",
            "containerDiskGb": "80.0",
            "dataCenter": "eu-ro-1",
            "cloudType": "secure",
            "spotFallback": "On-Demand",
            "maxOnDemandPricePerGpu": "0.7",
            "createTimeoutMinutes": "30",
            "idleStopMinutes": "0",
            "autoResume": "false",
            "stallMinutes": "90",
            "ports": '["22/tcp", "6006/http", "22/tcp"]',
        }
    )
    assert cfg.idle_stop_minutes == 0 and StackConfig.from_mapping(BASE).idle_stop_minutes == 20
    assert cfg.auto_resume is False and StackConfig.from_mapping(BASE).auto_resume is True
    assert cfg.stall_minutes == 90 and StackConfig.from_mapping(BASE).stall_minutes == 45
    assert cfg.gpu_count == 2 and isinstance(cfg.gpu_count, int)
    assert cfg.bid_per_gpu == 0.45
    assert cfg.volume_size_gb == 4096 and cfg.container_disk_gb == 80
    assert cfg.data_center == "EU-RO-1"  # RunPod misbehaves on lower-case codes
    assert cfg.cloud_type == "SECURE"
    assert cfg.spot_fallback == "on-demand" and cfg.max_on_demand_price_per_gpu == 0.7
    assert cfg.create_timeout_s == 1800
    assert cfg.ports == ("22/tcp", "6006/http")


def test_every_problem_is_reported_at_once_with_the_key_to_change():
    problems = _problems(
        {
            "gpuCount": "0",
            "bidPerGpu": "-1",
            "cloudType": "COMMUNITY",
            "dataCenter": "CZ",
            "volumeSizeGb": "5",
            "containerDiskGb": "lots",
            "ports": '["8888/http"]',
            "spotFallback": "sometimes",
            "createTimeoutMinutes": "0",
            "podName": "bad name!",
            "idleStopMinutes": "-5",
            "autoResume": "sometimes",
            "stallMinutes": "-1",
        }
    )
    keys = sorted(p.split()[0] for p in problems)
    assert keys == sorted(
        f"runpod-trainer:{k}"
        for k in (
            "gpuCount",
            "bidPerGpu",
            "cloudType",
            "dataCenter",
            "volumeSizeGb",
            "containerDiskGb",
            "ports",
            "spotFallback",
            "createTimeoutMinutes",
            "podName",
            "repoName",
            "sshPublicKey",
            "idleStopMinutes",
            "autoResume",
            "stallMinutes",
        )
    )
    message = str(ConfigError(problems))
    assert f"({len(problems)} problems)" in message and "pulumi config set" in message


def test_community_cloud_is_rejected_because_volumes_are_secure_cloud_only():
    for cloud in ("COMMUNITY", "community", "ALL"):
        (problem,) = _problems({**BASE, "cloudType": cloud})
        assert problem.startswith("runpod-trainer:cloudType")
        assert "Secure Cloud" in problem and "SECURE" in problem


@pytest.mark.parametrize("dc", ["US", "CZ", "EU_RO_1", "EURO1", "EU-RO", "EU-RO-ONE", ""])
def test_data_center_must_have_the_secure_cloud_shape(dc):
    (problem,) = _problems({**BASE, "dataCenter": dc})
    assert problem.startswith("runpod-trainer:dataCenter") and "EU-RO-1" in problem


@pytest.mark.parametrize("dc", ["EU-RO-1", "US-KS-2", "CA-MTL-1", "EUR-IS-1", "eu-cz-1"])
def test_secure_cloud_codes_are_accepted_upper_cased(dc):
    assert StackConfig.from_mapping({**BASE, "dataCenter": dc}).data_center == dc.upper()


@pytest.mark.parametrize("size,ok", [(9, False), (10, True), (4096, True), (4097, False), (10.5, False)])
def test_volume_size_range(size, ok):
    if ok:
        assert StackConfig.from_mapping({**BASE, "volumeSizeGb": size}).volume_size_gb == size
    else:
        (problem,) = _problems({**BASE, "volumeSizeGb": size})
        assert "volumeSizeGb" in problem and "10 to 4096" in problem


def test_spot_fallback_policy_must_be_explicit_and_consistent():
    (problem,) = _problems({**BASE, "spotFallback": "on-demand"})
    assert problem.startswith("runpod-trainer:maxOnDemandPricePerGpu") and "required" in problem
    (problem,) = _problems({**BASE, "spotFallback": "fail", "maxOnDemandPricePerGpu": 0.7})
    assert "only applies with spotFallback: on-demand" in problem
    (problem,) = _problems({**BASE, "spotFallback": "on-demand", "maxOnDemandPricePerGpu": "70"})
    assert "maxOnDemandPricePerGpu" in problem  # a typo for 0.70 must not be accepted as a cap


@pytest.mark.parametrize("bad", ["nan", "inf", "true", True, "", "0"])
def test_bid_must_be_a_positive_finite_price(bad):
    (problem,) = _problems({**BASE, "bidPerGpu": bad})
    assert problem.startswith("runpod-trainer:bidPerGpu")


def test_private_key_is_rejected_without_echoing_it(tmp_path):
    (problem,) = _problems({**BASE, "sshPublicKey": PRIVATE})
    assert "PRIVATE key" in problem and "b3BlbnNzaC1rZXk" not in problem
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(PRIVATE)
    (problem,) = _problems({"repoName": "r", "sshPublicKeyPath": str(key_file)})
    assert problem.startswith("runpod-trainer:sshPublicKeyPath") and "PRIVATE key" in problem
    assert "b3BlbnNzaC1rZXk" not in problem


def test_public_key_from_path_is_read_by_the_config(tmp_path):
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(PUB + "\n")
    cfg = StackConfig.from_mapping({"repoName": "r", "sshPublicKeyPath": str(pub)})
    assert cfg.ssh_public_key == PUB
    (problem,) = _problems({"repoName": "r", "sshPublicKeyPath": str(tmp_path / "missing.pub")})
    assert "cannot read" in problem
    (problem,) = _problems({**BASE, "sshPublicKeyPath": str(pub)})
    assert "both set" in problem


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("ssh-ed25519", "does not look like"),
        ("ssh-dss AAAA", "does not look like"),
        ("ssh-ed25519 not*base64", "damaged"),
        (_pubkey("ssh-rsa").replace("ssh-rsa", "ssh-ed25519", 1), "inconsistent"),
        (PUB + "\n" + PUB, "exactly one"),
    ],
)
def test_malformed_public_keys(text, fragment):
    assert fragment in validate_public_key(text)


def test_valid_public_key_kinds():
    for kind in ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com"):
        assert validate_public_key(_pubkey(kind)) is None


def test_unknown_keys_get_a_did_you_mean_hint():
    problems = _problems({**BASE, "gpuTyp": "x"})
    assert problems == ["runpod-trainer:gpuTyp is not a setting of this project; did you mean gpuType?"]


def test_default_name_is_runpod_safe():
    assert default_name("runpod-trainer", "dev") == "runpod-trainer-dev"
    assert default_name("runpod-trainer", "my stack/2", "volume") == "runpod-trainer-my-stack-2-volume"
    assert len(default_name("p" * 50, "s" * 50)) == 64


def test_load_reads_the_stack_config_through_pulumi(tmp_path):
    pub = tmp_path / "k.pub"
    pub.write_text(PUB)
    pulumi.runtime.set_all_config(
        {
            "runpod-trainer:repoName": "repo",
            "runpod-trainer:sshPublicKeyPath": str(pub),
            "runpod-trainer:gpuCount": "2",
            "runpod-trainer:ports": json.dumps(["22/tcp", "8888/http"]),
            "runpod:token": "secret-token-value",  # other namespaces are not ours to judge
        },
        ["runpod:token"],
    )
    try:
        cfg = StackConfig.load(project="runpod-trainer")
        assert (cfg.repo_name, cfg.gpu_count, cfg.ports) == ("repo", 2, ("22/tcp", "8888/http"))
        assert cfg.ssh_public_key == PUB

        pulumi.runtime.set_all_config(
            {"runpod-trainer:repoName": "repo", "runpod-trainer:sshPublicKey": PUB, "runpod-trainer:volumeSize": "50"}
        )
        with pytest.raises(ConfigError) as err:
            StackConfig.load(project="runpod-trainer")
        assert err.value.problems == [
            "runpod-trainer:volumeSize is not a setting of this project; did you mean volumeSizeGb?"
        ]
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_config_error_is_a_clean_pulumi_run_error():
    # RunError: `pulumi preview` prints the message only, not a Python traceback.
    assert issubclass(ConfigError, pulumi.RunError)
