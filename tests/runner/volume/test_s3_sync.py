"""`runner sync` through RunPod's S3 API: the pod stays stopped and the RunPod API is not called at all
(the fake's call log), incremental, multipart above the (scaled-down) PutObject cap, --delete with
single deletes, --dry-run, interrupt + rerun, and the --via switch."""

from __future__ import annotations

import os
import signal
import threading

from runner import cli
from runner.exitcodes import ExitCode
from tests.runner.test_sync import FILES, make_tree, transferred, tree
from tests.runner.volume.conftest import SMALL_PUT, ctrl_c_on

BIG = "audio_2/big.flac"


def _files_with_big() -> dict[str, str]:
    return {**FILES, BIG: "x" * (SMALL_PUT * 2 + 12345)}  # 3 parts of SMALL_PART... and then some


def test_sync_with_the_pod_stopped_makes_no_runpod_call_and_is_incremental(s3_env, capfd):
    s3 = s3_env.start("EXITED")
    files = _files_with_big()
    make_tree(s3_env.pod_env.data_dir, files)
    s3_env.fake.clear_requests()

    assert cli.main(["sync"]) == 0
    err = capfd.readouterr().err
    assert "through RunPod's S3 API" in err and "the pod was not started" in err
    assert tree(s3_env.pod_env.workspace / "data") == files  # what the pod will read
    assert s3_env.fake.requests == []  # not even a read of the pod
    assert s3_env.fake.billable_calls() == []
    assert s3_env.pod_env.pod.status == "EXITED"
    # The big file went multipart (the cap is scaled down); nothing at or above the cap was PUT whole.
    assert [r.key for r in s3.ops("CompleteMultipartUpload")] == [f"data/{BIG}"]
    assert len(s3.ops("UploadPart")) >= 3
    assert sorted(r.key for r in s3.ops("PutObject")) == sorted(f"data/{k}" for k in FILES)
    assert not [k for k in s3.keys() if k.startswith(".s3compat_uploads/")]

    # Nothing changed: nothing sent.
    s3.requests.clear()
    assert cli.main(["sync"]) == 0
    assert "0 files to upload" in capfd.readouterr().err
    assert {r.op for r in s3.requests} == {"ListObjectsV2"}

    # One file changed, one added: exactly those two.
    (s3_env.pod_env.data_dir / "audio_0" / "a.flac").write_text("changed")
    (s3_env.pod_env.data_dir / "audio_1" / "d.flac").write_text("new")
    s3.requests.clear()
    assert cli.main(["sync", "data/"]) == 0
    capfd.readouterr()
    assert sorted(r.key for r in s3.ops("PutObject")) == ["data/audio_0/a.flac", "data/audio_1/d.flac"]
    assert tree(s3_env.pod_env.workspace / "data") == tree(s3_env.pod_env.data_dir)
    assert s3_env.fake.requests == []


def test_dry_run_changes_nothing_and_delete_uses_single_deletes(s3_env, capfd):
    s3 = s3_env.start("EXITED")
    make_tree(s3_env.pod_env.data_dir, FILES)
    assert cli.main(["sync"]) == 0
    remote = s3_env.pod_env.workspace / "data"
    make_tree(remote, {"stale.txt": "only on the volume", "audio_1/old.flac": "old"})  # e.g. the pod wrote them
    (s3_env.pod_env.data_dir / "audio_0" / "b.flac").write_text("new content")
    capfd.readouterr()
    before = tree(remote)

    s3.requests.clear()
    assert cli.main(["sync", "--dry-run", "--delete"]) == 0
    out = capfd.readouterr().out
    assert "upload data/audio_0/b.flac" in out
    assert "delete data/stale.txt" in out and "delete data/audio_1/old.flac" in out
    assert tree(remote) == before
    assert {r.op for r in s3.requests} == {"ListObjectsV2"}

    assert cli.main(["sync", "--delete"]) == 0
    capfd.readouterr()
    assert tree(remote) == tree(s3_env.pod_env.data_dir)
    assert sorted(r.key for r in s3.ops("DeleteObject")) == ["data/audio_1/old.flac", "data/stale.txt"]
    assert s3.ops("DeleteObjects") == []  # RunPod has none; single deletes only


def test_interrupted_sync_leaves_no_partial_object_and_the_rerun_finishes(s3_env, capfd):
    s3 = s3_env.start("EXITED")
    files = _files_with_big()
    make_tree(s3_env.pod_env.data_dir, files)
    second_part = lambda req: req.op == "UploadPart" and len(s3.ops("UploadPart")) == 2  # noqa: E731
    with ctrl_c_on(s3, second_part) as parts_seen:
        assert cli.main(["sync"]) == 130
    assert "run it again to continue" in capfd.readouterr().err
    assert parts_seen.is_set()
    assert not (s3_env.pod_env.workspace / "data" / BIG).exists()  # never a partial file under its name
    assert [r.key for r in s3.ops("AbortMultipartUpload")] == [f"data/{BIG}"]
    assert s3.ops("CompleteMultipartUpload") == []
    assert not [k for k in s3.keys() if k.startswith(".s3compat_uploads/")]
    sent_before = {r.key for r in s3.ops("PutObject") if r.status == 200}

    s3.requests.clear()
    assert cli.main(["sync"]) == 0
    capfd.readouterr()
    assert tree(s3_env.pod_env.workspace / "data") == files
    resent = {r.key for r in s3.ops("PutObject")}
    assert not (resent & sent_before)  # finished files are not sent again
    assert s3_env.fake.billable_calls() == []


def test_via_ssh_forces_rsync_and_via_s3_without_keys_is_a_clear_error(s3_env, capfd):
    s3 = s3_env.start("RUNNING")
    make_tree(s3_env.pod_env.data_dir, FILES)
    s3.requests.clear()
    assert cli.main(["sync", "--via", "ssh"]) == 0
    out = capfd.readouterr().out
    assert transferred(out) == sorted(FILES)  # rsync's itemized list
    # Nothing of the data through S3: its only requests are the first connection's reads of the host key
    # the pod keeps on the volume (runner/pod/kept_host_key.py).
    assert s3.requests and {(r.op, r.key.rsplit("/", 1)[0]) for r in s3.requests} == {
        ("GetObject", ".runner/ssh-host-keys")
    }

    for key in ("RUNPOD_S3_ACCESS_KEY", "RUNPOD_S3_SECRET_KEY"):
        s3_env.monkeypatch.delenv(key)
    s3_env.fake.clear_requests()
    assert cli.main(["sync", "--via", "s3"]) == ExitCode.USAGE
    err = capfd.readouterr().err
    assert "--via s3" in err and "RUNPOD_S3_ACCESS_KEY" in err and "S3 API Keys" in err
    assert s3_env.fake.requests == []


def test_without_keys_rsync_as_before_and_one_note_on_what_s3_would_save(s3_env, capfd):
    s3_env.start("RUNNING", keys=False)
    make_tree(s3_env.pod_env.data_dir, FILES)
    assert cli.main(["sync"]) == 0
    cap = capfd.readouterr()
    assert transferred(cap.out) == sorted(FILES)
    assert cap.err.count("RunPod's S3 API") == 1 and "without starting the pod" in cap.err


def test_secret_never_printed(s3_env, capfd):
    s3 = s3_env.start("EXITED")
    s3_env.monkeypatch.setenv("RUNPOD_S3_SECRET_KEY", "rps_wrong_secret_value_42")
    make_tree(s3_env.pod_env.data_dir, FILES)
    assert cli.main(["sync", "--debug"]) == ExitCode.API
    cap = capfd.readouterr()
    assert "rejected the S3 API key" in cap.err and "SignatureDoesNotMatch" in cap.err
    assert "rps_wrong_secret_value_42" not in cap.out + cap.err
    assert s3.secret_key not in cap.out + cap.err


def test_settings_mask_the_s3_keys(s3_env):
    s3_env.start("EXITED")
    from runner.settings import load_settings

    s = load_settings()
    assert s.s3_secret_key and s.s3_secret_key not in repr(s) and s.s3_access_key not in repr(s)
    assert s.s3_secret_key in s.secrets()
    assert "RUNPOD_S3_SECRET_KEY" not in s.subprocess_env({})  # pulumi never gets it
