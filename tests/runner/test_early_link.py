"""The pod's API read and SSH connection opened in the background while `runner train` starts up
(runner/pod/early_link.py, runner/train/command.py), against the fake API and the real sshd."""

from __future__ import annotations

import threading

from remote.podside.sshsessions import ssh_connections, tcp_sockets
from runner.exitcodes import ExitCode
from runner.pod.early_link import EarlyLink
from runner.remote.hostkeys import HostKeyStore
from runner.settings import load_settings
from tests.fixtures.train_harness import smoke_config, train_env, wait_for  # noqa: F401

CONFIG = "configs/smoke.yaml"


def open_connections(env) -> int:
    """ESTABLISHED TCP connections to the pod's sshd (what the pod's idle stop counts too)."""
    return ssh_connections(set(env.sshd.ports), tcp_sockets())


def wait_all_closed(env, what: str) -> None:
    wait_for(lambda: open_connections(env) == 0, 10, what)


def stack_output_runs(env) -> int:
    return sum(1 for c in env.stub.calls() if c["argv"][:2] == ["stack", "output"])


def test_a_running_pod_is_reached_in_the_background_with_its_key_pinned(train_env):
    env = train_env
    env.add_pod("RUNNING")
    settings = load_settings()

    early = EarlyLink.start(settings)
    outputs = early.outputs()
    found = early.take(env.pod_id)

    assert open_connections(env) == 1
    assert outputs is not None and outputs.pod_id == env.pod_id
    assert found is not None and found.pod.status == "RUNNING"
    assert found.connection.run("echo early", timeout=10).stdout.strip() == "early"
    # the same host-key rules as every connection: pinned for this start of the pod
    assert HostKeyStore(settings.paths.known_hosts).get(env.pod_id) is not None
    assert early.take(env.pod_id) is None  # handed out once
    early.discard()
    assert not found.connection.is_active
    assert env.fake.billable_calls() == []


def test_a_connection_for_another_pod_is_not_handed_out_and_is_closed(train_env):
    env = train_env
    env.add_pod("RUNNING")
    early = EarlyLink.start(load_settings())

    assert early.take("some-other-pod") is None
    wait_all_closed(env, "the unused connection to be closed")


def test_a_stopped_pod_is_only_read_never_started_or_connected(train_env):
    env = train_env
    env.add_pod("EXITED")
    early = EarlyLink.start(load_settings())

    assert early.take(env.pod_id) is None
    assert early.outputs() is not None
    assert open_connections(env) == 0
    assert env.fake.billable_calls() == []


def test_bad_settings_are_kept_back_for_the_usual_path_to_report(train_env, monkeypatch, tmp_path):
    env = train_env
    env.add_pod("RUNNING")
    monkeypatch.setenv("SSH_KEY_PATH", str(tmp_path / "no-such-key"))
    early = EarlyLink.start(load_settings())

    assert early.outputs() is None
    assert early.take(env.pod_id) is None
    assert open_connections(env) == 0


def test_discard_closes_a_connection_that_is_still_being_opened(train_env):
    env = train_env
    env.add_pod("RUNNING")
    early = EarlyLink.start(load_settings())
    early.discard()  # before the thread got anywhere

    wait_for(lambda: early._done.is_set(), 20, "the background read to finish")
    assert early.take(env.pod_id) is None
    wait_all_closed(env, "a connection opened after the discard to be closed")


def test_train_uses_the_background_read_once_and_runs_as_before(train_env):
    env = train_env
    env.add_pod("RUNNING")

    res = env.run("train", "--config", CONFIG)

    assert res.code == 0, res.err
    assert "training succeeded: exit code 0" in res.err
    assert stack_output_runs(env) == 1  # the outputs were read once, in the background
    assert env.fake.billable_calls() == []
    wait_all_closed(env, "every connection of the run to be closed")
    # the launch left its record: the next one sends the short script (remote/podside/bundle.py)
    assert len(list((env.state_dir / "dev" / "podside").iterdir())) == 1
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to stop itself")
    with env.fake.state.lock:
        env.fake.state.start(env.pod, api="graphql", spot_bid=env.pod.bid_per_gpu or 0.3)
    again = env.run("train", "--config", CONFIG)
    assert again.code == 0, again.err
    assert "training succeeded: exit code 0" in again.err


def test_bad_input_after_the_background_connect_leaves_no_connection_open(train_env):
    env = train_env
    env.add_pod("RUNNING")

    res = env.run("train", "--config", "configs/missing.yaml")

    assert res.code == ExitCode.USAGE, res.err
    assert "configs/missing.yaml" in res.err
    assert env.fake.billable_calls() == []
    for thread in [t for t in threading.enumerate() if t.name == "early-link"]:
        thread.join(timeout=30)  # the background read ends without anyone waiting for it
        assert not thread.is_alive()
    wait_all_closed(env, "any background connection to be closed")


def ssh_logins(env) -> int:
    """Connections the pod's sshd authenticated so far (its log: one `Accepted publickey` each)."""
    return env.sshd.log_path.read_text(errors="replace").count("Accepted publickey")


def test_a_train_shares_one_ssh_connection_between_the_launch_the_follow_and_the_end(train_env):
    """Each handshake costs ~5 round trips on a real link (docs/internals/benchmarks.md): the launch's
    connection is kept for the follow and the follow's for the end's acknowledgement, then closed."""
    env = train_env
    env.add_pod("RUNNING")
    before = ssh_logins(env)
    res = env.run("train", "--config", CONFIG)
    assert res.code == 0 and "training succeeded: exit code 0" in res.err, res.err
    assert ssh_logins(env) - before == 1, res.err
    wait_all_closed(env, "the one connection to be closed at the end")
    # A stopped pod, resumed by this command (no early link): one connection too. Its own output_dir: a run
    # resumed from the first one's last checkpoint would end, and the pod stop itself, before the follow
    # opened its channel, and the runner would rightly reconnect to read the end.
    wait_for(lambda: env.pod.status == "EXITED", 10, "the pod to stop itself")
    env.write_config("configs/again.yaml", smoke_config(output_dir="checkpoints/again"))
    before = ssh_logins(env)
    again = env.run("train", "--config", "configs/again.yaml")
    assert again.code == 0 and "training succeeded: exit code 0" in again.err, again.err
    assert ssh_logins(env) - before == 1, again.err
    wait_all_closed(env, "the one connection to be closed at the end")
