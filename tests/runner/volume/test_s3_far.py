"""`runner sync` through S3 behind the `far` link (standins/link.py: 140 ms round trip, 50 Mbit/s each
way), with RunPod's quirks on: the upload is as correct as on loopback. Every file arrives whole under
its key (listing cut into ranges, repeated continuation tokens, directory entries), nothing at or above
the PutObject cap is sent whole, no DeleteObjects, a no-op sends nothing, and an interrupted multipart
upload leaves no partial object. Correctness only: timings are the benchmark's (bench/s3.py)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

import runner.volume.listing as listing
from runner import cli
from standins.link import PROFILES, Link
from tests.runner.test_sync import make_tree, tree
from tests.runner.volume.conftest import SMALL_PUT, ctrl_c_on

BIG = "audio_2/long_take.flac"


def data_set(n: int = 150) -> dict[str, str]:
    files = {f"audio_{i % 3}/clip_{i:04d}.wav": f"clip {i} " * (1 + i % 40) for i in range(n)}
    files["manifest.jsonl"] = "".join(f'{{"audio": "audio_{i % 3}/clip_{i:04d}.wav"}}\n' for i in range(n))
    files[BIG] = "y" * (SMALL_PUT * 2 + 4321)
    return files


@pytest.fixture
def far(s3_env, monkeypatch):
    monkeypatch.setattr(listing, "PAGE_SIZE", 20)  # many pages and ranges from a small data set
    s3 = s3_env.start("EXITED")
    with Link(PROFILES["far"]) as link:
        monkeypatch.setenv("RUNPOD_S3_ENDPOINT_URL", f"http://127.0.0.1:{link.forward(s3.port)}/")
        yield s3, link


def test_first_upload_and_no_op_under_far_are_exact(s3_env, far, capfd):
    s3, link = far
    s3.repeat_token = 3
    files = data_set()
    make_tree(s3_env.pod_env.data_dir, files)

    assert cli.main(["sync"]) == 0
    assert "the pod was not started" in capfd.readouterr().err
    assert tree(s3_env.pod_env.workspace / "data") == files
    assert link.stats()[s3.port].connections >= 2  # it did go through the link, on parallel connections
    assert [r.key for r in s3.ops("CompleteMultipartUpload")] == [f"data/{BIG}"]
    assert sorted(r.key for r in s3.ops("PutObject")) == sorted(f"data/{k}" for k in files if k != BIG)
    assert s3.ops("DeleteObjects") == [] and s3.ops("DeleteObject") == []
    assert not [k for k in s3.keys() if k.startswith(".s3compat_uploads/")]
    assert s3_env.fake.requests == []

    s3.repeat_token = 3
    s3.requests.clear()
    assert cli.main(["sync"]) == 0
    assert "0 files to upload" in capfd.readouterr().err
    assert {r.op for r in s3.requests} == {"ListObjectsV2"}
    assert len(s3.requests) > len(files) // 20  # the listing, cut in ranges, was whole


def test_interrupted_upload_under_far_leaves_no_partial_object(s3_env, far, capfd):
    s3, _ = far
    files = data_set(30)
    make_tree(s3_env.pod_env.data_dir, files)
    with ctrl_c_on(s3, lambda req: req.op == "UploadPart"):
        assert cli.main(["sync"]) == 130
    assert "run it again to continue" in capfd.readouterr().err
    assert not (s3_env.pod_env.workspace / "data" / BIG).exists()
    assert [r.key for r in s3.ops("AbortMultipartUpload")] == [f"data/{BIG}"]
    assert s3.ops("CompleteMultipartUpload") == []
    assert not [k for k in s3.keys() if k.startswith(".s3compat_uploads/")]
    assert all(
        (s3_env.pod_env.workspace / "data" / k).read_text() == v
        for k, v in files.items()
        if (s3_env.pod_env.workspace / "data" / k).exists()
    )  # what is there is whole

    assert cli.main(["sync"]) == 0
    capfd.readouterr()
    assert tree(s3_env.pod_env.workspace / "data") == files
