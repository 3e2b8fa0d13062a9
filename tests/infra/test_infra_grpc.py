"""The providers behind the real `python -m pulumi.dynamic` gRPC server, driven like the engine does.

The CLI starts that server (plugin pulumi-resource-pulumi-python) with cwd = the program directory,
reads its port from stdout and speaks the ResourceProvider gRPC protocol: Configure once with the
whole stack config (secrets wrapped), then Check/Diff/Create/Read/Update/Delete with protobuf
Structs (every number becomes a float).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import provider_pb2_grpc

from backends.runpod.client import GRAPHQL_URL_ENV, REST_URL_ENV
from backends.runpod.models import EXITED, RUNNING
from infra.pod_resource import PodProvider
from infra.volume_resource import VolumeProvider
from tests.infra.test_infra_config import PUB

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "runpod-trainer"


def urn(type_name: str, name: str) -> str:
    return f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/runpod:{type_name}::{name}"


class DynamicProviderServer:
    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"provider server did not start: {line!r} {self.proc.stderr.read()!r}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.loop = asyncio.new_event_loop()
        self.responses: list[bytes] = []  # every serialized answer, to search for leaked secrets

    def close(self) -> str:
        """Stop the server; returns what it wrote to stderr."""
        self.channel.close()
        self.loop.close()
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode("utf-8", "replace")

    # ------------------------------------------------------------ (de)serialization as the engine does it
    def ser(self, props: dict[str, Any]) -> struct_pb2.Struct:
        return self.loop.run_until_complete(rpc.serialize_properties(props, {}))

    @staticmethod
    def de(struct: struct_pb2.Struct) -> dict[str, Any]:
        return rpc.deserialize_properties(struct, keep_unknowns=True)

    def _keep(self, response):
        self.responses.append(response.SerializeToString())
        return response

    # ------------------------------------------------------------ RPCs
    def configure(self, config: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> None:
        args = {k: rpc.wrap_rpc_secret(v) if k in secret_keys else v for k, v in config.items()}
        self._keep(self.stub.Configure(proto.ConfigureRequest(args=self.ser(args), acceptSecrets=True)))

    def check(self, urn_: str, olds: dict, news: dict):
        r = self._keep(self.stub.Check(proto.CheckRequest(urn=urn_, olds=self.ser(olds), news=self.ser(news))))
        return self.de(r.inputs), [(f.property, f.reason) for f in r.failures]

    def diff(self, urn_: str, id_: str, olds: dict, news: dict):
        return self._keep(self.stub.Diff(proto.DiffRequest(urn=urn_, id=id_, olds=self.ser(olds), news=self.ser(news))))

    def create(self, urn_: str, props: dict):
        r = self._keep(self.stub.Create(proto.CreateRequest(urn=urn_, properties=self.ser(props))))
        return r.id, self.de(r.properties)

    def read(self, urn_: str, id_: str, props: dict, inputs: dict | None = None):
        r = self._keep(
            self.stub.Read(
                proto.ReadRequest(urn=urn_, id=id_, properties=self.ser(props), inputs=self.ser(inputs or {}))
            )
        )
        return r.id, self.de(r.properties)

    def update(self, urn_: str, id_: str, olds: dict, news: dict):
        r = self._keep(
            self.stub.Update(proto.UpdateRequest(urn=urn_, id=id_, olds=self.ser(olds), news=self.ser(news)))
        )
        return self.de(r.properties)

    def delete(self, urn_: str, id_: str, props: dict) -> None:
        self._keep(self.stub.Delete(proto.DeleteRequest(urn=urn_, id=id_, properties=self.ser(props))))


def provider_blob(provider) -> str:
    """The `__provider` value exactly as `pulumi.dynamic.Resource` computes it."""
    return serialize_provider(provider)


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}
    env.update(PULUMI_PROJECT=PROJECT, **extra)
    return env


# ---------------------------------------------------------------- the test
VOLUME_URN = urn("NetworkVolume", "volume")
POD_URN = urn("SpotPod", "pod")


@pytest.fixture
def server(fake_runpod):
    env = fake_runpod.env()
    srv = DynamicProviderServer(server_env({REST_URL_ENV: env[REST_URL_ENV], GRAPHQL_URL_ENV: env[GRAPHQL_URL_ENV]}))
    yield srv
    stderr = srv.close()
    assert fake_runpod.api_key not in stderr


def test_full_lifecycle_through_the_provider_server(server, fake_runpod, sshd):
    fake_runpod.set_ssh_target(sshd.host, sshd.ports)
    key = fake_runpod.api_key
    # The engine passes the whole stack config; the token is secret (set with --secret).
    server.configure(
        {"runpod:token": key, f"{PROJECT}:repoName": "repo", f"{PROJECT}:gpuCount": "1"}, secret_keys=("runpod:token",)
    )

    # --- volume: check normalizes, create returns floats the program turns back into ints
    vol_blob = provider_blob(VolumeProvider())
    vol_in, failures = server.check(
        VOLUME_URN, {}, {"volume_name": "ckpt", "size_gb": 20, "data_center": "eu-ro-1", "__provider": vol_blob}
    )
    assert failures == [] and vol_in["data_center"] == "EU-RO-1" and vol_in["size_gb"] == 20.0
    vol_id, vol_out = server.create(VOLUME_URN, vol_in)
    assert fake_runpod.volumes[vol_id].size == 20 and vol_out["volume_id"] == vol_id
    assert vol_out["__provider"] == vol_blob

    _, bad = server.check(VOLUME_URN, vol_in, {**vol_in, "size_gb": 10})
    assert [p for p, _ in bad] == ["size_gb"]  # shrinking is refused at check

    # --- pod: every number arrives as float; create must still send ints to RunPod
    pod_blob = provider_blob(PodProvider())
    pod_news = {
        "pod_name": "runpod-trainer-dev",
        "image": "runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204",
        "gpu_type": "NVIDIA GeForce RTX 4090",
        "gpu_count": 1,
        "data_center": "EU-RO-1",
        "cloud_type": "SECURE",
        "volume_id": vol_id,
        "volume_mount_path": "/workspace",
        "container_disk_gb": 50,
        "ports": ["22/tcp"],
        "env": {"HF_HOME": "/workspace/.cache/huggingface", "PYTHONPATH": "/workspace/repo", "PUBLIC_KEY": PUB},
        "bid_per_gpu": 0.5,
        "spot_fallback": "fail",
        "create_timeout_s": 120,
        "__provider": pod_blob,
    }
    pod_in, failures = server.check(POD_URN, {}, pod_news)
    assert failures == [] and pod_in["gpu_count"] == 1.0
    pod_id, pod_out = server.create(POD_URN, pod_in)
    fake_pod = fake_runpod.pods[pod_id]
    assert fake_pod.status == RUNNING and fake_pod.interruptible and fake_pod.gpu_count == 1
    assert pod_out["market"] == "spot" and pod_out["ssh_host"] == sshd.host
    assert int(pod_out["ssh_port"]) in sshd.ports and pod_out["__provider"] == pod_blob

    # --- diff: same inputs with a new provider blob -> nothing; image -> replace, delete first
    same = server.diff(POD_URN, pod_id, pod_out, {**pod_in, "__provider": provider_blob(PodProvider())})
    assert same.changes == proto.DiffResponse.DIFF_NONE
    img = server.diff(POD_URN, pod_id, pod_out, {**pod_in, "image": "other:2"})
    assert img.changes == proto.DiffResponse.DIFF_SOME and list(img.replaces) == ["image"]
    assert img.deleteBeforeReplace is True
    bid = server.diff(POD_URN, pod_id, pod_out, {**pod_in, "bid_per_gpu": 0.6})
    assert bid.changes == proto.DiffResponse.DIFF_SOME and list(bid.replaces) == []

    # --- update in place keeps every output (the default update would wipe them)
    upd = server.update(POD_URN, pod_id, pod_out, {**pod_in, "bid_per_gpu": 0.6})
    assert upd["bid_per_gpu"] == 0.6 and upd["pod_id"] == pod_id and upd["ssh_host"] == sshd.host

    # --- refresh: preempted, then gone
    fake_runpod.preempt(pod_id)
    rid, seen = server.read(POD_URN, pod_id, upd, pod_in)
    assert rid == pod_id and seen["status"] == EXITED and seen["preempted"] is True
    assert seen.get("ssh_host") is None
    fake_runpod.preempt(pod_id, terminate=True)
    rid, _ = server.read(POD_URN, pod_id, seen, pod_in)
    assert rid == ""  # dropped from state

    # --- destroy: pod already gone is fine, then the volume
    server.delete(POD_URN, pod_id, seen)
    server.delete(VOLUME_URN, vol_id, vol_out)
    assert vol_id not in fake_runpod.volumes

    # The key never came back in any answer.
    assert all(key.encode() not in r for r in server.responses)


def test_provider_errors_reach_the_engine_with_the_message_and_no_key(server, fake_runpod):
    server.configure({"runpod:token": fake_runpod.api_key}, secret_keys=("runpod:token",))
    vol_blob = provider_blob(VolumeProvider())
    vol_in, _ = server.check(
        VOLUME_URN, {}, {"volume_name": "v", "size_gb": 10, "data_center": "EU-RO-1", "__provider": vol_blob}
    )
    vol_id, vol_out = server.create(VOLUME_URN, vol_in)
    fake_runpod.add_pod(name="stranger", volume_id=vol_id)
    with pytest.raises(grpc.RpcError) as err:
        server.delete(VOLUME_URN, vol_id, vol_out)
    details = err.value.details()
    assert "still attached to a pod" in details
    assert fake_runpod.api_key not in details
    # The server always sends traceback.format_exc(): ours is the shortest it allows, the server's two
    # frames and the provider's, then the message; no chain through the client and its retries.
    lines = details.rstrip().splitlines()
    assert lines[-1].startswith("infra.volume_resource.VolumeStillInUse: ") and "still attached" in lines[-1]
    assert "The above exception" not in details and "During handling" not in details
    assert len([line for line in lines if line.lstrip().startswith("File ")]) == 3, details


def test_without_a_token_the_error_says_how_to_set_it(server):
    server.configure({f"{PROJECT}:repoName": "x"})
    vol_blob = provider_blob(VolumeProvider())
    vol_in, _ = server.check(
        VOLUME_URN, {}, {"volume_name": "v", "size_gb": 10, "data_center": "EU-RO-1", "__provider": vol_blob}
    )
    with pytest.raises(grpc.RpcError) as err:
        server.create(VOLUME_URN, vol_in)
    assert "pulumi config set --secret runpod:token" in err.value.details()


def test_a_bug_in_a_provider_keeps_its_whole_traceback():
    import traceback

    from infra import provider_support as ps

    class Broken(ps.RunPodProvider):
        def create(self, props):
            return props["image"]

    with pytest.raises(KeyError) as info:
        Broken().create({})
    assert 'return props["image"]' in "".join(traceback.format_tb(info.value.__traceback__))
