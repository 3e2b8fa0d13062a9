"""Conformance, GraphQL side: RunPod's official SDK 1.x (runpod 1.12.0, the last line that speaks
GraphQL) makes its own pod and GPU calls against the fake and must get the documented shapes back.

Our client sends GraphQL only for spot (podRentInterruptable, podBidResume, the minimum bid); these
are the other queries RunPod's GraphQL answers today — `myself { pods }`, `pod`, `gpuTypes` with
`lowestPrice`, `podFindAndDeployOnDemand`, `podStop`, `podResume`, `podTerminate` — written by
someone else, with inline literals (enum values, `null`) where our client uses variables. So the
fake has to model RunPod's schema, not our queries.

1.x and 2.x are one package name, so 1.x cannot be installed beside the 2.x test dependency:
scripts/test.sh downloads the 1.12.0 wheel into .venv/sdk-wheels/ and this test loads the wheel's
request code (runpod/api/: ctl_commands, graphql, queries, mutations) as a package of another name.
Its graphql.py takes `runpod.error`, `runpod.user_agent` and the global `runpod.api_key` from the
installed runpod, which 2.x provides under the same names. Requests go to RUNPOD_API_BASE_URL on
127.0.0.1, with proxies off.
"""

from __future__ import annotations

import importlib
import os
import sys
import zipfile
from pathlib import Path

import pytest
import runpod  # 2.x: supplies error, user_agent, api_key

from tests.fixtures.pod_harness import wait_for

ROOT = Path(__file__).resolve().parents[2]
WHEEL = Path(os.environ.get("RT_SDK1_WHEEL") or ROOT / ".venv" / "sdk-wheels" / "runpod-1.12.0-py3-none-any.whl")
PACKAGE = "runpod_sdk1_api"
GPU = "NVIDIA GeForce RTX 4090"
IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"


@pytest.fixture(scope="module")
def sdk1_package(tmp_path_factory):
    if not WHEEL.is_file():
        pytest.fail(
            f"{WHEEL} is missing: run `bash scripts/test.sh` once (it downloads RunPod's SDK 1.12.0 "
            "wheel), or point RT_SDK1_WHEEL at it",
            pytrace=False,
        )
    root = tmp_path_factory.mktemp("sdk1")
    with zipfile.ZipFile(WHEEL) as wheel:
        for name in wheel.namelist():
            if name.startswith("runpod/api/") and name.endswith(".py"):
                target = root / PACKAGE / name[len("runpod/api/") :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(name))
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(f"{PACKAGE}.ctl_commands")
    finally:
        sys.path.remove(str(root))
        for module in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[module]


@pytest.fixture
def sdk1(sdk1_package, fake_runpod, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_BASE_URL", fake_runpod.url)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(runpod, "api_key", fake_runpod.api_key)
    return sdk1_package


def test_gpu_calls(sdk1, fake_runpod):
    gpus = sdk1.get_gpus()
    assert GPU in {g["id"] for g in gpus}
    assert all(set(g) == {"id", "displayName", "memoryInGb"} for g in gpus)
    gpu = sdk1.get_gpu(GPU, 2)
    assert gpu["id"] == GPU and gpu["maxGpuCount"] >= 2 and gpu["secureCloud"] is True
    assert gpu["securePrice"] > 0 and gpu["lowestPrice"]["uninterruptablePrice"] == gpu["securePrice"]
    assert 0 < gpu["lowestPrice"]["minimumBidPrice"] <= gpu["secureSpotPrice"] < gpu["securePrice"]
    with pytest.raises(ValueError, match="No GPU found"):
        sdk1.get_gpu("NVIDIA Imaginary 9999")


def test_pod_lifecycle(sdk1, fake_runpod):
    vol = fake_runpod.add_volume(data_center="EU-RO-1")
    # No data center given: the SDK looks the volume's up with `myself { networkVolumes }` first.
    created = sdk1.create_pod(
        "sdk1-pod",
        IMAGE,
        GPU,
        cloud_type="SECURE",
        network_volume_id=vol.id,
        ports="22/tcp",
        volume_mount_path="/workspace",
        env={"PUBLIC_KEY": "ssh-ed25519 AAAAC3Nza sdk1@test"},
    )
    pod_id = created["id"]
    assert created["imageName"] == IMAGE and created["machine"]["podHostId"].startswith(pod_id)
    assert "PUBLIC_KEY=ssh-ed25519 AAAAC3Nza sdk1@test" in created["env"]
    pod = fake_runpod.pods[pod_id]
    assert pod.interruptible is False and pod.data_center == "EU-RO-1" and pod.volume_id == vol.id
    assert [r.operation for r in fake_runpod.billable_calls()] == ["podFindAndDeployOnDemand"]

    wait_for(lambda: fake_runpod.pods[pod_id].status == "RUNNING", 10, "the pod to boot")
    listed = {p["id"]: p for p in sdk1.get_pods()}
    assert listed[pod_id]["desiredStatus"] == "RUNNING" and listed[pod_id]["podType"] == "RESERVED"
    one = sdk1.get_pod(pod_id)
    assert one["gpuCount"] == 1 and one["volumeMountPath"] == "/workspace" and one["ports"] == "22/tcp"
    assert one["runtime"]["ports"][0]["privatePort"] == 22 and one["machine"]["gpuDisplayName"]

    assert sdk1.stop_pod(pod_id)["desiredStatus"] == "EXITED"
    assert sdk1.get_pod(pod_id)["desiredStatus"] == "EXITED"
    assert sdk1.resume_pod(pod_id, 1)["desiredStatus"] == "RUNNING"
    sdk1.terminate_pod(pod_id)
    assert sdk1.get_pod(pod_id) is None
    assert pod_id not in {p["id"] for p in sdk1.get_pods()}


def test_a_query_for_a_field_runpod_does_not_have_is_refused_like_graphql_refuses_it(sdk1, fake_runpod):
    from runpod import error

    run_graphql_query = sys.modules[f"{PACKAGE}.graphql"].run_graphql_query
    with pytest.raises(error.QueryError, match='Cannot query field "bidHistory" on type "Pod"'):
        run_graphql_query("query { myself { pods { id bidHistory } } }")
