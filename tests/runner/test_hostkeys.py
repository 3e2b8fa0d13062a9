"""Host-key pinning: the store's rules, then the whole flow against the real sshd with a key rotation."""

from __future__ import annotations

import json
import os
import threading

import pytest

from runner.errors import HostKeyMismatch, HostKeyStoreError
from runner.remote.hostkeys import HostKey, HostKeyStore, pin_id_for_host
from runner.remote.ssh import SshConnection, SshTarget

K1 = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
K2 = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIHhwYeQ5tLk+qSDbV1pn8u3mK0Ld1zRI0Tu4rgIwfu0O")
T1 = "2026-07-10T10:00:00Z"
T2 = "2026-07-10T12:30:00Z"


@pytest.fixture
def store(tmp_path):
    return HostKeyStore(tmp_path / "state" / "known_hosts.json")


def test_first_use_pins_then_matches(store):
    assert store.check("pod-1", K1, started_at=T1) == "pinned"
    assert store.check("pod-1", K1, started_at=T1) == "matched"
    pin = store.get("pod-1")
    assert (pin.host_key, pin.started_at) == (K1, T1)


def test_changed_key_after_a_restart_is_repinned(store):
    store.check("pod-1", K1, started_at=T1)
    assert store.check("pod-1", K2, started_at=T2) == "repinned"
    assert store.get("pod-1").host_key == K2
    with pytest.raises(HostKeyMismatch):  # the old key is not accepted any more
        store.check("pod-1", K1, started_at=T2)


def test_changed_key_without_a_restart_is_refused(store):
    store.check("pod-1", K1, started_at=T1)
    with pytest.raises(HostKeyMismatch) as info:
        store.check("pod-1", K2, started_at=T1, endpoint="1.2.3.4:22022")
    message = str(info.value)
    assert K1.fingerprint in message and K2.fingerprint in message
    assert "man-in-the-middle" in message
    assert f'delete the "pod-1" entry from {store.path}' in message
    assert store.get("pod-1").host_key == K1  # the pin is untouched


@pytest.mark.parametrize("claimed_start", [None, "2026-07-10T09:00:00Z", "not a date", ""])
def test_no_or_older_start_time_never_justifies_a_new_key(store, claimed_start):
    store.check("pod-1", K1, started_at=T1)
    with pytest.raises(HostKeyMismatch):
        store.check("pod-1", K2, started_at=claimed_start)


def test_plain_host_targets_never_accept_a_new_key(store):
    pin = pin_id_for_host("10.0.0.5", 2222)
    assert pin == "10.0.0.5:2222"
    store.check(pin, K1)
    with pytest.raises(HostKeyMismatch, match="no pod start time"):
        store.check(pin, K2, started_at=T2)


def test_same_key_across_a_restart_moves_the_pin_forward(store):
    """Otherwise a later key change with a start time between the two would be accepted."""
    store.check("pod-1", K1, started_at=T1)
    assert store.check("pod-1", K1, started_at=T2) == "matched"
    assert store.get("pod-1").started_at == T2
    with pytest.raises(HostKeyMismatch):
        store.check("pod-1", K2, started_at="2026-07-10T11:00:00Z")


def test_a_matched_key_records_where_the_pod_answers_now(store):
    """The pin's endpoint is where `runner sync` starts rsync before the API answers: a restart that
    kept the key but moved the port must move it too (else every later sync guesses the old port)."""
    store.check("pod-1", K1, started_at=T1, endpoint="10.0.0.1:40001")
    assert store.check("pod-1", K1, started_at=T2, endpoint="10.0.0.1:40777") == "matched"
    pin = store.get("pod-1")
    assert (pin.started_at, pin.endpoint) == (T2, "10.0.0.1:40777")
    assert store.check("pod-1", K1, started_at=T2) == "matched"  # no endpoint given: kept
    assert store.get("pod-1").endpoint == "10.0.0.1:40777"


def test_time_zones_are_compared_as_instants(store):
    store.check("pod-1", K1, started_at="2026-07-10T12:00:00+02:00")  # 10:00Z
    assert store.check("pod-1", K2, started_at="2026-07-10T10:00:01Z") == "repinned"


def test_pins_are_per_pod(store):
    store.check("pod-1", K1, started_at=T1)
    assert store.check("pod-2", K2, started_at=T1) == "pinned"
    assert store.get("pod-1").host_key == K1


def test_store_file_is_private_and_replaced_atomically(store):
    store.check("pod-1", K1, started_at=T1)
    store.check("pod-2", K2, started_at=T1)
    assert (store.path.stat().st_mode & 0o777) == 0o600
    data = json.loads(store.path.read_text())
    assert data["version"] == 1 and set(data["pins"]) == {"pod-1", "pod-2"}
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_forget_removes_a_pin(store):
    store.check("pod-1", K1, started_at=T1)
    assert store.forget("pod-1") is True
    assert store.forget("pod-1") is False
    assert store.check("pod-1", K2, started_at=T1) == "pinned"


def test_damaged_store_says_to_delete_it(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(HostKeyStoreError, match="damaged; delete it"):
        store.check("pod-1", K1)


def test_concurrent_pins_from_threads_all_land(store):
    errors = []

    def pin(i):
        try:
            HostKeyStore(store.path).check(f"pod-{i}", K1, started_at=T1)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=pin, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(json.loads(store.path.read_text())["pins"]) == {f"pod-{i}" for i in range(20)}


def test_policy_reports_the_outcome(store):
    seen = []
    policy = store.policy("pod-1", started_at=T1, on_outcome=lambda outcome, key: seen.append((outcome, key)))
    confirm = policy(K1)
    assert seen == [] and store.get("pod-1") is None  # provisional until the server authenticated us
    confirm()
    policy(K1)()
    assert seen == [("pinned", K1), ("matched", K1)]


# ---- against the real sshd ----------------------------------------------------------------------
def test_tofu_across_a_real_host_key_rotation(sshd, store):
    target = SshTarget(sshd.host, sshd.port, sshd.user, sshd.key_path)
    outcomes = []

    def connect(started_at):
        policy = store.policy("pod-x", started_at=started_at, on_outcome=lambda o, k: outcomes.append(o))
        with SshConnection.open(target, host_key_check=policy) as c:
            return c.run("echo ok").stdout

    assert connect(T1) == "ok\n"
    assert connect(T1) == "ok\n"
    first_key = sshd.known_host_key
    assert store.get("pod-x").host_key == HostKey.from_line(first_key)

    sshd.rotate_host_key()  # what a RunPod pod looks like after stop + start
    assert sshd.known_host_key != first_key

    with pytest.raises(HostKeyMismatch, match="pod-x"):
        connect(T1)  # same start time: the API says it did not restart -> refuse
    assert store.get("pod-x").host_key == HostKey.from_line(first_key)

    assert connect(T2) == "ok\n"  # the API says it restarted -> accept and re-pin
    assert store.get("pod-x").host_key == HostKey.from_line(sshd.known_host_key)
    assert outcomes == ["pinned", "matched", "repinned"]
    assert os.stat(store.path).st_mode & 0o777 == 0o600
