"""`runner sync`'s fast paths on the real sshd: the speculative start (rsync on the pinned key before the API
answers) and the OpenSSH control master that a repeated sync reuses (runner/remote/pod_rsync.py,
runner/remote/controlmaster.py; docs/guide/data.md).

How a test tells a new SSH connection from a reused one: the sshd logs "Accepted publickey" once per
authenticated connection; a session through a control master authenticates nothing.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import runner.remote.pod_rsync as pod_rsync
from backends.runpod.client import RunPodClient
from runner import cli
from runner.exitcodes import ExitCode
from runner.remote import controlmaster
from runner.remote.rsync import RsyncRun
from tests.fixtures.train_harness import wait_for
from tests.runner.test_sync import (  # noqa: F401
    FILES,
    ConnectSpy,
    files_transferred,
    key_of,
    make_tree,
    pinned_key,
    pod_env,
    pod_sshd,
    transferred,
    tree,
)


def accepted(sshd) -> int:
    return sshd.log_path.read_text(errors="replace").count("Accepted publickey")


def sockets(pod_env) -> list[Path]:
    d = pod_env.state_dir / "dev" / controlmaster.DIRECTORY
    return sorted(p for p in d.iterdir() if p.is_socket()) if d.exists() else []


class RsyncSpy:
    """Records every rsync the sync starts (held = speculative) and when the API is read, in order."""

    def __init__(self, monkeypatch, on_read=None):
        self.events: list[str] = []
        self.runs: list[RsyncRun] = []
        spy = self

        class Recorded(RsyncRun):
            def __init__(self, argv, *, held=False):
                super().__init__(argv, held=held)
                spy.events.append("rsync held" if held else "rsync")
                spy.runs.append(self)

        monkeypatch.setattr(pod_rsync, "RsyncRun", Recorded)
        monkeypatch.setattr("runner.companions.sync.run_rsync", lambda argv: Recorded(argv).wait())
        real = RunPodClient.find_pod

        def find_pod(client, pod_id, **kw):
            self.events.append("api")
            if on_read is not None:
                on_read(self)
            return real(client, pod_id, **kw)

        monkeypatch.setattr(RunPodClient, "find_pod", find_pod)


def first_sync(pod_env, capfd) -> None:
    """Pin the pod's key (paramiko, first contact) with one sync of FILES."""
    pod_env.add_pod("RUNNING")
    make_tree(pod_env.data_dir, FILES)
    assert cli.main(["sync"]) == 0
    capfd.readouterr()


def restart_through_the_api(pod_env) -> None:
    """Stop + start as RunPod shows it: a newer startedAt and another port (same sshd, same key here)."""
    client = pod_env.fake.client()
    before = pod_env.pod.started_at
    client.stop_pod(pod_env.pod_id)
    client.resume_spot_pod(pod_env.pod_id, 0.3, 1)
    wait_for(lambda: pod_env.pod.status == "RUNNING" and pod_env.pod.started_at != before, 10, "the pod to run again")


# ---------------------------------------------------------------- the speculative start
def test_rsync_starts_before_the_api_read_and_its_output_once_the_api_agrees(pod_env, capfd, monkeypatch):
    first_sync(pod_env, capfd)
    (pod_env.data_dir / "audio_1" / "e.flac").write_text("new")
    spy, connects = RsyncSpy(monkeypatch), ConnectSpy(monkeypatch)
    pod_env.fake.clear_requests()
    assert cli.main(["sync"]) == 0
    captured = capfd.readouterr()
    assert spy.events == ["rsync held", "api"]  # no second rsync: the speculative one was it
    assert connects.calls == 0
    assert transferred(captured.out) == ["audio_1/e.flac"] and files_transferred(captured.out) == 1
    assert captured.err.count("copying the contents of") == 1 and "synced " in captured.err
    assert tree(pod_env.workspace / "data") == tree(pod_env.data_dir)
    assert [(r.method, r.path) for r in pod_env.fake.requests] == [("GET", f"/v2/pods/{pod_env.pod_id}")]


SLOW_RSYNC = """#!/usr/bin/env python3
# The pod's rsync, fed its input at ~2 MB/s: a transfer the test can catch half-way. Exits with rsync.
import os, subprocess, sys, threading, time
p = subprocess.Popen(["rsync", *sys.argv[1:]], stdin=subprocess.PIPE)
def pump():
    try:
        while (b := os.read(0, 8192)):
            p.stdin.write(b)
            p.stdin.flush()
            time.sleep(0.004)
        p.stdin.close()
    except OSError:
        pass
threading.Thread(target=pump, daemon=True).start()
os._exit(p.wait())
"""


def test_a_speculation_the_api_refutes_is_stopped_with_nothing_partial_under_a_real_name(
    pod_env, capfd, monkeypatch, tmp_path
):
    first_sync(pod_env, capfd)
    big = os.urandom(6 * 1024 * 1024)
    (pod_env.data_dir / "big.bin").write_bytes(big)
    slow = tmp_path / "pod-bin" / "rsync"
    slow.parent.mkdir()
    slow.write_text(SLOW_RSYNC)
    slow.chmod(0o755)
    monkeypatch.setattr("runner.companions.sync.REMOTE_RSYNC", str(slow))
    remote = pod_env.workspace / "data"
    seen: dict[str, object] = {}

    def mid_transfer(spy):
        # The speculative rsync is writing big.bin (rsync's temp file grows), when the API turns out to show
        # a pod that started again since the pin: the speculation must go.
        wait_for(
            lambda: any(p.name.startswith(".big.bin.") and p.stat().st_size > 0 for p in remote.iterdir()),
            30,
            "the speculative rsync to be half-way through big.bin",
        )
        restart_through_the_api(pod_env)

    spy = RsyncSpy(monkeypatch, on_read=lambda s: mid_transfer(s) if len(s.events) == 2 else None)
    import runner.companions.sync as sync_module

    real_start = sync_module._start_and_pin

    def start_and_pin(*a, **kw):  # the normal path begins: what does the volume show now?
        seen["names"] = sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file())
        seen["spec_exit"] = spy.runs[0].proc.poll()
        seen["masters"] = sockets(pod_env)
        return real_start(*a, **kw)

    monkeypatch.setattr(sync_module, "_start_and_pin", start_and_pin)
    connects = ConnectSpy(monkeypatch)
    assert cli.main(["sync"]) == 0
    captured = capfd.readouterr()
    # the normal path reads the pod again while it waits for it (runner/pod/lifecycle.py), then one rsync
    assert spy.events[:2] == ["rsync held", "api"] and spy.events.count("rsync") == 1
    assert spy.events[-1] == "rsync"
    assert seen["spec_exit"] is not None  # stopped before the normal path started
    assert "big.bin" not in seen["names"]  # never under its real name while partial
    assert seen["masters"] == []  # its master closed with it
    assert connects.calls == 1  # the newer start: paramiko checks the key
    assert (remote / "big.bin").read_bytes() == big
    assert transferred(captured.out) == ["big.bin"]  # the abandoned run printed nothing
    assert captured.err.count("copying the contents of") == 1
    assert not [p for p in remote.iterdir() if p.name.startswith(".big.bin.")]


def test_a_restarted_pods_new_key_is_refused_by_the_speculation_then_repinned(pod_env, capfd, monkeypatch):
    first_sync(pod_env, capfd)
    old_pin = pinned_key(pod_env)
    client = pod_env.fake.client()
    client.stop_pod(pod_env.pod_id)
    pod_env.sshd.rotate_host_key()  # the pin's port still answers, with the new key
    client.resume_spot_pod(pod_env.pod_id, 0.3, 1)
    wait_for(lambda: pod_env.pod.status == "RUNNING", 10, "the pod to run again")
    (pod_env.data_dir / "audio_0" / "a.flac").write_text("after restart")

    def let_ssh_decide(spy):  # the API answers only once ssh has looked at the key
        if len(spy.events) == 2:
            wait_for(lambda: spy.runs[0].proc.poll() is not None, 30, "the speculative rsync to end")

    spy = RsyncSpy(monkeypatch, on_read=let_ssh_decide)
    assert cli.main(["sync"]) == 0
    captured = capfd.readouterr()
    speculative = spy.runs[0]
    assert speculative.proc.returncode != 0 and speculative.wait().host_key_refused
    assert spy.events[:2] == ["rsync held", "api"] and spy.events[-1] == "rsync" and spy.events.count("rsync") == 1
    assert transferred(captured.out) == ["audio_0/a.flac"]
    for noise in ("@@@@", "Host key verification failed", "connection unexpectedly closed", "error:"):
        assert noise not in captured.err, captured.err
    assert pinned_key(pod_env) != old_pin and pinned_key(pod_env) == key_of(pod_env.sshd.known_host_key)


# ---------------------------------------------------------------- the control master
def test_a_repeated_sync_reuses_the_connection_of_the_first(pod_env, capfd):
    first_sync(pod_env, capfd)
    (master,) = sockets(pod_env)
    assert stat.S_IMODE(master.parent.stat().st_mode) == 0o700
    before = accepted(pod_env.sshd)
    (pod_env.data_dir / "audio_1" / "f.flac").write_text("second")
    assert cli.main(["sync"]) == 0
    assert transferred(capfd.readouterr().out) == ["audio_1/f.flac"]
    assert accepted(pod_env.sshd) == before  # no new SSH connection: the master carried it
    assert sockets(pod_env) == [master]


def test_ssh_control_persist_0_turns_the_reuse_off(pod_env, capfd, monkeypatch):
    monkeypatch.setenv("SSH_CONTROL_PERSIST", "0")
    first_sync(pod_env, capfd)
    before = accepted(pod_env.sshd)
    assert cli.main(["sync"]) == 0
    capfd.readouterr()
    assert accepted(pod_env.sshd) == before + 1 and sockets(pod_env) == []
    monkeypatch.setenv("SSH_CONTROL_PERSIST", "soon")
    assert cli.main(["sync"]) == ExitCode.USAGE
    assert "SSH_CONTROL_PERSIST (environment) must be a whole number of seconds" in capfd.readouterr().err


def test_a_pod_that_started_again_never_gets_the_old_master(pod_env, capfd):
    first_sync(pod_env, capfd)
    (old,) = sockets(pod_env)
    restart_through_the_api(pod_env)  # same key (the sandbox keeps its sshd): only the start differs
    before = accepted(pod_env.sshd)
    (pod_env.data_dir / "audio_1" / "g.flac").write_text("after restart")
    assert cli.main(["sync"]) == 0
    assert transferred(capfd.readouterr().out) == ["audio_1/g.flac"]
    (new,) = sockets(pod_env)
    assert new != old and not old.exists()
    assert accepted(pod_env.sshd) > before  # connected (and authenticated) afresh


def test_a_sync_that_stops_the_pod_closes_its_master_first(pod_env, capfd, monkeypatch):
    pod_env.add_pod("EXITED")
    make_tree(pod_env.data_dir, FILES)
    from runner.pod.pod import StackPod

    at_stop: list[list[Path]] = []
    real_stop = StackPod.stop

    def stop(self):
        at_stop.append(sockets(pod_env))  # the masters still open when the stop is asked for
        return real_stop(self)

    monkeypatch.setattr(StackPod, "stop", stop)
    assert cli.main(["sync"]) == 0
    assert "stopping pod" in capfd.readouterr().err
    assert at_stop == [[]] and pod_env.pod.status == "EXITED"
    assert not list((pod_env.state_dir / "dev" / controlmaster.DIRECTORY).glob("*.known_hosts"))


def test_a_socket_path_too_long_for_unix_means_no_multiplexing(pod_env, capfd, monkeypatch, tmp_path):
    deep = tmp_path / ("state-" + "x" * 60)
    monkeypatch.setenv("RUNNER_STATE_DIR", str(deep))
    first_sync(pod_env, capfd)
    settings = pod_env.settings()
    assert (
        controlmaster.master_for(
            settings,
            pod_env.pod_id,
            started_at=pod_env.pod.started_at,
            host="127.0.0.1",
            port=22,
            user="root",
            key_type="ssh-ed25519",
            key="AAAA",
        )
        is None
    )
    before = accepted(pod_env.sshd)
    assert cli.main(["sync"]) == 0
    capfd.readouterr()
    assert accepted(pod_env.sshd) == before + 1  # plain connections, every time
    assert not [p for p in deep.rglob("*") if p.is_socket()]


def test_close_all_leaves_no_master_behind(pod_env, capfd):
    first_sync(pod_env, capfd)
    (master,) = sockets(pod_env)
    assert controlmaster.close_all(pod_env.state_dir) == [master]
    assert sockets(pod_env) == []
    check = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", f"ControlPath={master}", "-O", "check", "x"], capture_output=True, timeout=15
    )
    assert check.returncode != 0
