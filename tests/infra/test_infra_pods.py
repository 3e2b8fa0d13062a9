"""Several pods in one stack on its one volume (podCount / podNames), under Pulumi's mocks: the first pod
stays the resource `pod` with the inputs and outputs it always had; the others are `pod-<name>` with the
same policy and RT_POD_SLOT, and the `pods` output lists them all."""

from __future__ import annotations

import pulumi
import pytest

from infra import program
from infra.config_checks import ConfigError
from infra.pod_resource import PodArgs
from infra.stack_config import StackConfig
from remote.podside.bundle import start_command
from tests.infra.test_infra_config import PUB
from tests.infra.test_infra_program import OUTPUTS, POD_TYPE, PROJECT, Mocks, _config, is_pod_urn


@pytest.fixture
def mocks():
    m = Mocks()
    pulumi.runtime.set_mocks(m, project=PROJECT, stack="dev", preview=False)
    yield m
    pulumi.runtime.set_all_config({}, [])


def pods_of(mocks: Mocks) -> dict[str, dict]:
    return {
        r.name: {k: v for k, v in r.inputs.items() if k != "__provider"} for r in mocks.resources if r.typ == POD_TYPE
    }


@pulumi.runtime.test
def test_pod_count_declares_the_first_pod_as_before_and_the_others_beside_it(mocks):
    pulumi.runtime.set_all_config(_config(podCount=3), [])
    stack = program.build()
    assert set(stack.outputs) == OUTPUTS | {"pods"}
    assert stack.pods is not None and list(stack.pods) == ["pod1", "pod2", "pod3"]

    def check(pods_output):
        pods = pods_of(mocks)
        assert sorted(pods) == ["pod", "pod-pod2", "pod-pod3"]
        first = pods["pod"]
        assert first["pod_name"] == "runpod-trainer-dev" and "RT_POD_SLOT" not in first["env"]
        for name in ("pod2", "pod3"):
            other = pods[f"pod-{name}"]
            assert other["pod_name"] == f"runpod-trainer-dev-{name}"
            assert other["env"] == {**first["env"], "RT_POD_SLOT": name}
            assert {k: v for k, v in other.items() if k not in ("pod_name", "env")} == {
                k: v for k, v in first.items() if k not in ("pod_name", "env")
            }
        assert list(pods_output) == ["pod1", "pod2", "pod3"]
        assert [p["slot"] for p in pods_output.values()] == ["", "pod2", "pod3"]
        assert is_pod_urn(pods_output["pod1"]["pod_urn"])
        assert pods_output["pod2"]["pod_urn"].endswith("::pod-pod2")
        assert pods_output["pod1"]["ssh_port"] == 40022

    return pulumi.Output.from_input(stack.outputs["pods"]).apply(check)


@pulumi.runtime.test
def test_one_pod_stack_has_no_pods_output(mocks):
    pulumi.runtime.set_all_config(_config(podCount=1), [])
    stack = program.build()
    assert stack.pods is None and set(stack.outputs) == OUTPUTS

    def check(_):
        assert list(pods_of(mocks)) == ["pod"]

    return stack.pod.urn.apply(check)


def test_pod_names_and_count_are_checked_together():
    base = {"repoName": "r", "sshPublicKey": PUB}
    assert StackConfig.from_mapping({**base, "podNames": '["a", "b"]'}).pods == ("a", "b")
    assert StackConfig.from_mapping({**base, "podNames": "a,b", "podCount": "2"}).pods == ("a", "b")
    assert StackConfig.from_mapping({**base, "podCount": "1"}).pods == ()
    with pytest.raises(ConfigError) as err:
        StackConfig.from_mapping({**base, "podNames": '["a", "A b", "a"]', "podCount": "2", "gpuCount": "9"})
    text = str(err.value)
    assert "podNames entries must be lower-case" in text and "must not name a pod twice" in text
    assert "podCount is 2 but podNames names 3" in text and "gpuCount" in text  # every problem at once
    with pytest.raises(ConfigError, match="podCount must be a whole number from 1 to 16"):
        StackConfig.from_mapping({**base, "podCount": "17"})


def test_each_pod_after_the_first_keeps_its_own_records_from_its_start_command():
    args = PodArgs(
        pod_name="p",
        image="i",
        gpu_type="g",
        gpu_count=1,
        data_center="EU-RO-1",
        volume_id="v",
        container_disk_gb=10,
        bid_per_gpu=0.3,
        spot_fallback="fail",
        max_on_demand_price_per_gpu=None,
        create_timeout_s=60,
    )
    assert args.spec().start_command == start_command(20 * 60, "/workspace")  # the first pod: as before
    second = PodArgs(**{**args.__dict__, "env": {"RT_POD_SLOT": "b"}}).spec().start_command
    assert "--pod-slot b" in second and "/workspace/logs/pods/b/autoresume.log" in second
    assert "/workspace/logs/pods/b/idlewatch.log" in second
