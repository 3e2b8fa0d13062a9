"""RunPod's S3 quirks (RunPod docs, storage/s3-api), each played by standins/runpod_s3.py and met by our
client: directory entries, `.s3compat_uploads/`, repeated continuation tokens, slow listings, clock skew,
region/endpoint mismatch, wrong keys, no CreateBucket / DeleteObjects / presigned URLs, the PutObject cap."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from runner.errors import VolumeAuthError, VolumeClockSkew
from runner.pod.stack_outputs import StackOutputs
from runner.volume import AccessState, check_access, read_file
from runner.volume.listing import list_files, list_files_split
from runner.volume.s3 import VolumeClient
from runner.volume.s3_config import VolumeS3
from runner.volume.wire import S3Error
from standins.runpod_s3 import RunPodS3


@pytest.fixture
def standin(tmp_path):
    with RunPodS3(volume_id="vol-quirks", put_limit=64 * 1024) as s3:
        yield s3


def _vs(s3: RunPodS3, **kw) -> VolumeS3:
    base = dict(
        endpoint=s3.endpoint_url,
        region=s3.data_center,
        bucket=s3.volume_id,
        workspace="/workspace",
        access_key=s3.access_key,
        secret_key=s3.secret_key,
    )
    return VolumeS3(**{**base, **kw})


class _Settings:
    def __init__(self, s3: RunPodS3, **kw):
        self.s3_access_key = kw.get("access", s3.access_key)
        self.s3_secret_key = kw.get("secret", s3.secret_key)
        self.s3_endpoint_url = s3.endpoint_url


def _outputs(s3: RunPodS3, dc: str = "EU-RO-1") -> StackOutputs:
    return StackOutputs(stack="dev", pod_id="pod-1", volume_id=s3.volume_id, data_center=dc)


def _boto(s3: RunPodS3):
    """boto3 with RunPod's coordinates, as a user's own tool would reach the volume."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.data_center,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _put(client: VolumeClient, key: str, body: bytes = b"x") -> None:
    client.s3.put_object(Bucket=client.vs.bucket, Key=key, Body=body)


def test_listing_hides_directory_entries_and_uploads_in_progress(standin):
    client = VolumeClient(_vs(standin))
    _put(client, "outputs/run/checkpoint-1/model.safetensors")
    client.s3.create_multipart_upload(Bucket=standin.volume_id, Key="data/huge.bin")  # left in progress
    keys = standin.keys()
    assert "outputs/" in keys and "outputs/run/" in keys  # RunPod lists folders
    assert any(k.startswith(".s3compat_uploads/") for k in keys)
    assert [o.key for o in client.list("")] == ["outputs/run/checkpoint-1/model.safetensors"]
    standin.backend().put_object(Bucket=standin.volume_id, Key="outputs/run", Body=b"")  # an entry without "/"
    assert [o.key for o in client.list("")] == ["outputs/run/checkpoint-1/model.safetensors"]


def test_repeated_continuation_token_neither_loops_nor_loses_files(standin):
    client = VolumeClient(_vs(standin))
    want = [f"data/f{i:03d}" for i in range(57)]
    for k in want:
        _put(client, k)
    standin.repeat_token = 3
    # A naive pager (boto3's own, as `aws s3 sync` uses) stops on the repeated token...
    with pytest.raises(Exception, match="same next token|twice"):
        list(
            _boto(standin)
            .get_paginator("list_objects_v2")
            .paginate(Bucket=standin.volume_id, Prefix="data/", PaginationConfig={"PageSize": 10})
        )
    standin.repeat_token = 3
    standin.requests.clear()
    got = list_files(client, "data", page_size=10)
    assert [o.key for o in got] == want
    assert len(standin.ops("ListObjectsV2")) <= 12  # 6 pages plus a few continued with StartAfter


def test_a_listing_cut_in_ranges_is_the_whole_listing(standin):
    client = VolumeClient(_vs(standin), parallel=4)
    keys = [f"data/a/{i:03d}" for i in range(40)] + [f"data/b/{i:03d}" for i in range(30)] + ["data/z.jsonl"]
    for k in keys:
        _put(client, k)
    _put(client, "elsewhere/x")
    standin.backend().put_object(Bucket=standin.volume_id, Key="data/b", Body=b"")  # a folder entry, no "/"
    standin.repeat_token = 2
    whole = list_files(client, "data", page_size=7)
    assert [o.key for o in whole] == keys
    # Cuts at keys that exist, at keys that do not, and past the end; pages far smaller than the ranges.
    cuts = ["data/a/010", "data/a/0355", "data/b/", "data/b/029", "data/zz"]
    standin.repeat_token = 2
    standin.requests.clear()
    split = list_files_split(client, "data", cuts, parallel=4, page_size=7)
    assert split == whole
    assert len(standin.ops("ListObjectsV2")) >= len(cuts) + 1  # every range was listed
    assert list_files_split(client, "data", [], page_size=7) == whole


def test_endless_token_repeats_still_finish(standin):
    client = VolumeClient(_vs(standin))
    for i in range(25):
        _put(client, f"d/{i:02d}")
    standin.repeat_token = 10_000
    assert len(list_files(client, "d", page_size=5)) == 25


def test_slow_listing_is_retried(standin):
    client = VolumeClient(_vs(standin))
    _put(client, "logs/current.log", b"hello\n")
    standin.slow_lists = 2
    assert [o.key for o in client.list("logs")] == ["logs/current.log"]
    assert [r.status for r in standin.ops("ListObjectsV2")] == [503, 503, 200]


def test_clock_more_than_an_hour_off_is_named(standin):
    standin.clock_offset_s = 2 * 3600
    with pytest.raises(VolumeClockSkew, match="clock is more than an hour off"):
        VolumeClient(_vs(standin)).check()
    access = check_access(_Settings(standin), _outputs(standin))
    assert access.state == AccessState.CLOCK and "clock" in access.message
    standin.clock_offset_s = 30 * 60  # RunPod allows an hour, more than AWS's 15 minutes
    VolumeClient(_vs(standin)).check()


def test_region_mismatch_is_a_403_naming_the_data_center(standin):
    # The stack says US-KS-2, the endpoint is EU-RO-1's: RunPod answers 403.
    with pytest.raises(VolumeAuthError, match="US-KS-2") as e:
        VolumeClient(_vs(standin, region="US-KS-2")).check()
    assert "403" in e.value.message and "s3api-us-ks-2.runpod.io" in e.value.message
    access = check_access(_Settings(standin), _outputs(standin, dc="US-KS-2"))
    assert access.state == AccessState.REJECTED and "US-KS-2" in access.message


def test_wrong_keys_are_rejected_without_showing_the_secret(standin):
    access = check_access(_Settings(standin, secret="rps_not_the_secret_1234"), _outputs(standin))
    assert access.state == AccessState.REJECTED and "RUNPOD_S3_SECRET_KEY" in access.message
    assert "rps_not_the_secret_1234" not in access.message
    access = check_access(_Settings(standin, access="user_someone_else"), _outputs(standin))
    assert access.state == AccessState.REJECTED and "InvalidAccessKeyId" in access.message
    assert check_access(_Settings(standin), _outputs(standin)).ok


def test_no_keys_or_a_data_center_without_s3_is_unavailable_not_an_error(standin):
    class NoKeys(_Settings):
        pass

    s = NoKeys(standin, access=None)
    assert check_access(s, _outputs(standin)).state == AccessState.UNAVAILABLE
    assert read_file(s, _outputs(standin), "/workspace/.runner/self_stop.json") is None
    s2 = _Settings(standin)
    s2.s3_endpoint_url = None
    found = check_access(s2, _outputs(standin, dc="CA-MTL-1"))
    assert found.state == AccessState.UNAVAILABLE and "CA-MTL-1" in found.message


def test_read_file_through_s3(standin):
    client = VolumeClient(_vs(standin))
    _put(client, ".runner/self_stop.json", b'{"run_id": "r1", "attempt": 2}')
    s = _Settings(standin)
    assert read_file(s, _outputs(standin), "/workspace/.runner/self_stop.json") == b'{"run_id": "r1", "attempt": 2}'
    assert read_file(s, _outputs(standin), ".runner/missing.json") is None


def test_what_runpod_does_not_have(standin):
    client = VolumeClient(_vs(standin))
    _put(client, "a.txt")
    boto = _boto(standin)
    with pytest.raises(ClientError, match="NotImplemented"):
        boto.create_bucket(Bucket="another-volume")
    with pytest.raises(ClientError, match="NotImplemented"):
        boto.delete_objects(Bucket=standin.volume_id, Delete={"Objects": [{"Key": "a.txt"}]})
    url = boto.generate_presigned_url("get_object", Params={"Bucket": standin.volume_id, "Key": "a.txt"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=10)
    assert e.value.code == 403
    with pytest.raises(S3Error, match="EntityTooLarge"):
        client.s3.put_object(Bucket=standin.volume_id, Key="big.bin", Body=b"x" * (64 * 1024))
    client.delete("a.txt")  # single deletes work
    assert client.list("") == []
