"""remote/podside/record.py: the state record (atomic, fsync'd) and attempt counting."""

from __future__ import annotations

import json
import os

import pytest

from remote.podside import record
from remote.podside.contract import StateKey


def test_new_record_has_every_key_in_order_and_refuses_unknown_ones():
    data = record.new_record(run_id="r", attempt=1, state="setup")
    assert list(data) == list(StateKey.ALL)
    assert data["exit_code"] is None and data["run_id"] == "r"
    with pytest.raises(KeyError):
        record.new_record(runid="typo")


def test_updates_are_atomic_renames_with_fsync(tmp_path, monkeypatch):
    path = str(tmp_path / "state.json")
    synced, replaced = [], []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((a, b)), real_replace(a, b)))
    state = record.StateFile(path, record.new_record(run_id="r", attempt=1, state="setup"))
    state.write()
    state.update(state="running", train_pid=123)
    assert json.loads(open(path).read())["state"] == "running"
    assert len(replaced) == 2 and all(b == path and a != path for a, b in replaced)
    assert len(synced) >= 2
    assert sorted(os.listdir(tmp_path)) == ["state.json"], "no temp file left behind"
    with pytest.raises(KeyError):
        state.update(not_a_key=1)


def test_update_merges_into_what_is_on_disk(tmp_path):
    path = str(tmp_path / "state.json")
    record.write_json_atomic(path, {"run_id": "r", "attempt": 2, "state": "setup"})
    state = record.StateFile(path)
    state.update(supervisor_pid=42)
    assert record.load(path) == {"run_id": "r", "attempt": 2, "state": "setup", "supervisor_pid": 42}


def test_a_failed_write_leaves_the_old_record(tmp_path):
    path = str(tmp_path / "state.json")
    record.write_json_atomic(path, {"state": "running"})
    with pytest.raises(TypeError):
        record.write_json_atomic(path, {"state": object()})
    assert record.load(path) == {"state": "running"}
    assert os.listdir(tmp_path) == ["state.json"]


@pytest.mark.parametrize(
    "previous, run_id, expected",
    [
        (None, "r", 1),
        ({"run_id": "r", "attempt": 3}, "r", 4),
        ({"run_id": "other", "attempt": 3}, "r", 1),
        ({"run_id": "r", "attempt": "3"}, "r", 1),
        ({"run_id": "r", "attempt": True}, "r", 1),
        ({"run_id": "r"}, "r", 1),
    ],
)
def test_attempt_counting(previous, run_id, expected):
    assert record.next_attempt(previous, run_id) == expected


def test_load_tolerates_absent_and_garbage(tmp_path):
    assert record.load(str(tmp_path / "none.json")) is None
    (tmp_path / "bad.json").write_text("[1, 2")
    assert record.load(str(tmp_path / "bad.json")) is None
    (tmp_path / "list.json").write_text("[1, 2]")
    assert record.load(str(tmp_path / "list.json")) is None
