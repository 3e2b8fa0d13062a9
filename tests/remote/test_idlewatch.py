"""The idle stop's watcher (remote/podside/idlewatch.py), piece by piece; tests/runner/test_idle_stop.py
runs it for real on the stand-in pod."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from remote.podside import bundle, idlewatch, sshsessions
from remote.podside.contract import IdleKey, SelfStopReason, VolumePaths
from tests.fixtures.pod_harness import wait_for

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def proc_net_line(n: int, local_port: int, remote_port: int, state: str, inode: int) -> str:
    return (
        f"   {n}: 0100007F:{local_port:04X} 0100007F:{remote_port:04X} {state} 00000000:00000000 "
        f"00:00000000 00000000     0        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"
    )


def test_ssh_connections_count_only_established_ones_to_the_ssh_port(tmp_path):
    tcp = tmp_path / "tcp"
    tcp.write_text(
        HEADER
        + proc_net_line(0, 22, 0, "0A", 100)  # sshd listening
        + proc_net_line(1, 22, 51234, "01", 101)  # a session to it
        + proc_net_line(2, 51800, 22, "01", 102)  # the pod's own ssh out to elsewhere
        + proc_net_line(3, 22, 51235, "06", 103)
    )  # a closed one (TIME_WAIT)
    sockets = sshsessions.tcp_sockets([str(tcp), str(tmp_path / "missing-tcp6")])
    assert len(sockets) == 4
    proc = fake_proc(tmp_path, {10: ("sshd: root@notty", [101, 900])})
    assert sshsessions.ssh_connections({22}, sockets, proc) == 1
    assert sshsessions.ssh_connections({2222}, sockets, proc) == 0


def fake_proc(tmp_path: Path, processes: dict) -> str:
    """A /proc with these pids: {pid: (process title, [socket inodes its fds point at])}."""
    proc = tmp_path / "proc"
    for pid, (title, inodes) in processes.items():
        (proc / str(pid) / "fd").mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(title.encode() + b"\0")
        for fd, inode in enumerate(inodes):
            (proc / str(pid) / "fd" / str(fd)).symlink_to(f"socket:[{inode}]")
    return str(proc)


@pytest.mark.parametrize(
    ("title", "counted"),
    [
        ("sshd: root", 1),  # OpenSSH once the user is authenticated, before a channel (a tunnel only)
        ("sshd: root@notty", 1),  # ... with a session channel (before 9.8)
        ("sshd: root@pts/0", 1),
        ("sshd-session: root@notty", 1),  # OpenSSH 9.8 on
        ("sshd: [accepted]", 0),  # a TCP connection that never authenticated
        ("sshd: root [priv]", 0),
        ("sshd: root [net]", 0),
        ("sshd: unknown [preauth]", 0),
        ("sshd-session: root [priv]", 0),
    ],
)
def test_only_authenticated_ssh_connections_count(tmp_path, title, counted):
    tcp = tmp_path / "tcp"
    tcp.write_text(HEADER + proc_net_line(0, 22, 0, "0A", 100) + proc_net_line(1, 22, 51234, "01", 101))
    sockets = sshsessions.tcp_sockets([str(tcp)])
    proc = fake_proc(
        tmp_path, {1: ("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", [100]), 7: (title, [101])}
    )
    assert sshsessions.ssh_connections({22}, sockets, proc) == counted


def test_without_a_visible_sshd_every_established_connection_counts(tmp_path):
    tcp = tmp_path / "tcp"
    tcp.write_text(HEADER + proc_net_line(1, 22, 51234, "01", 101) + proc_net_line(2, 22, 51235, "01", 102))
    proc = fake_proc(tmp_path, {3: ("dropbear -F -p 22", [101, 102])})
    assert sshsessions.ssh_connections({22}, sshsessions.tcp_sockets([str(tcp)]), proc) == 2


def test_ssh_ports_come_from_the_override_else_sshd_else_22():
    assert sshsessions.ssh_ports({sshsessions.SSH_PORTS_ENV: "2222, 2223"}, []) == {2222, 2223}
    # No sshd among these sockets' owners: port 22, what RunPod's images use inside the container.
    assert sshsessions.ssh_ports({}, [(40000, "0A", "no-such-inode")]) == {22}


def test_the_sshd_of_this_machine_is_found_by_its_listening_sockets(sshd):
    ports = sshsessions.sshd_listen_ports(sshsessions.tcp_sockets())
    assert set(sshd.ports) <= ports


def test_training_counts_only_while_its_supervisor_lives(tmp_path):
    paths = VolumePaths(str(tmp_path))
    os.makedirs(paths.runner_dir)
    supervisor = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "supervise"], stdin=subprocess.PIPE
    )
    try:
        wait_for(
            lambda: b"supervise" in Path(f"/proc/{supervisor.pid}/cmdline").read_bytes(),
            10,
            "the stand-in supervisor to have exec'd",
        )
        for state, pid, busy in (
            ("running", supervisor.pid, True),
            ("setup", supervisor.pid, True),
            ("succeeded", supervisor.pid, False),
            ("running", os.getpid(), False),
            ("running", None, False),
        ):
            Path(paths.state_file).write_text(
                json.dumps({"run_id": "r1", "attempt": 2, "state": state, "supervisor_pid": pid})
            )
            assert bool(idlewatch.training_running(paths)) is busy, (state, pid)
        Path(paths.state_file).write_text(
            json.dumps({"run_id": "r1", "attempt": 2, "state": "running", "supervisor_pid": supervisor.pid})
        )
        assert idlewatch.training_running(paths) == "run r1 attempt 2"
    finally:
        supervisor.communicate(b"")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted_watcher(tmp_path, monkeypatch, busy: list[list[str]], stops: list[bool], idle_s: float = 30.0):
    paths = VolumePaths(str(tmp_path))
    os.makedirs(paths.runner_dir, exist_ok=True)
    os.makedirs(paths.log_dir, exist_ok=True)
    clock = Clock()
    checks = iter(busy)
    monkeypatch.setattr(idlewatch, "busy_reasons", lambda *_: next(checks, []))
    logged: list[str] = []
    watcher = idlewatch.Watcher(
        paths, idle_s, 10.0, {}, str(tmp_path / "rp_env"), logged.append, clock=clock, sleep=clock.sleep
    )
    attempts: list[float] = []

    def stop() -> bool:
        attempts.append(clock.now)
        return stops.pop(0)

    monkeypatch.setattr(watcher, "stop_pod", stop)
    return watcher, clock, attempts, logged, paths


def test_busy_restarts_the_idle_clock_and_idle_for_the_whole_time_stops(tmp_path, monkeypatch):
    busy = [["training (run r attempt 1)"]] * 3 + [[]] * 2 + [["1 SSH connection(s) on port 22"]] + [[]] * 10
    watcher, clock, attempts, logged, paths = scripted_watcher(tmp_path, monkeypatch, busy, [True])
    assert watcher.run(max_checks=30) == 0
    # Busy at checks 1-3 and 6 (t=1000..1020, 1050); idle from 1050; 30 s later, at t=1080, the stop.
    assert attempts == [1080.0]
    assert logged[1:] == [
        "busy: training (run r attempt 1)",
        "idle: nothing running, nobody connected",
        "busy: 1 SSH connection(s) on port 22",
        "idle: nothing running, nobody connected",
    ]
    status = json.loads(Path(paths.idle_watch).read_text())
    assert status[IdleKey.BUSY] == [] and status[IdleKey.IDLE_FOR_S] == 30.0 and status[IdleKey.PID] == os.getpid()


def test_a_failed_stop_is_tried_again_later_not_at_every_check(tmp_path, monkeypatch):
    watcher, clock, attempts, logged, _ = scripted_watcher(tmp_path, monkeypatch, [], [False, True])
    watcher.run(max_checks=100)
    assert attempts == [1030.0, 1030.0 + idlewatch.RETRY_STOP_S]


def test_the_watcher_leaves_when_the_volume_is_gone(tmp_path, monkeypatch):
    watcher, clock, attempts, logged, paths = scripted_watcher(tmp_path, monkeypatch, [], [])
    os.rmdir(paths.runner_dir)
    assert watcher.run(max_checks=5) == 0
    assert attempts == [] and "is gone" in logged[-1]


def test_the_idle_stop_marker_says_idle(tmp_path, monkeypatch):
    paths = VolumePaths(str(tmp_path))
    os.makedirs(paths.runner_dir)
    os.makedirs(paths.log_dir)
    Path(paths.state_file).write_text(json.dumps({"run_id": "r9", "attempt": 3, "state": "succeeded"}))
    watcher = idlewatch.Watcher(paths, 5.0, 1.0, {"RUNPOD_POD_ID": "abc"}, str(tmp_path / "none"), lambda _: None)
    monkeypatch.setattr(idlewatch.selfstop, "stop_pod", lambda *a, **k: "REST v2")
    assert watcher.stop_pod()
    marker = json.loads(Path(paths.self_stop_marker).read_text())
    assert marker["reason"] == SelfStopReason.IDLE and marker["run_id"] == "r9" and marker["attempt"] == 3


# ---------------------------------------------------------------- the start command
def test_the_start_command_is_one_single_quoted_bash_word_with_no_quote_inside():
    command = bundle.start_command(1200, "/workspace")
    words = shlex.split(command)  # how RunPod's host parses a start command
    assert words[:2] == ["sh", "-c"] and len(words) == 3
    assert "'" not in words[2]
    # the host keys kept on the volume first (sshd must find them), then the auto-resume
    assert words[2].startswith("D=${RT_SSH_HOST_KEY_DIR:-/etc/ssh}; K=/workspace/.runner/ssh-host-keys; ")
    assert "fi 2>/dev/null; RT_AR=/workspace/.runner/podside-current.pyz; " in words[2]
    assert "setsid python3 $RT_AR autoresume --workspace /workspace </dev/null" in words[2]
    assert "--idle-seconds 1200 --workspace /workspace --ensure" in words[2]
    assert words[2].endswith("S=${RT_IMAGE_START:-/start.sh}; if [ -x $S ]; then exec $S; fi; exec sleep infinity")
    assert len(command) < 16_000  # it travels in every create request
    with pytest.raises(ValueError, match="plain absolute path"):
        bundle.start_command(1200, "/work space")


def test_without_python3_the_image_still_starts(tmp_path):
    """A start command must never keep the image from starting: no python3 means no watcher, that's all."""
    started = tmp_path / "started"
    image_start = tmp_path / "start.sh"
    image_start.write_text(f"#!/bin/sh\necho image-start > {started}\n")
    image_start.chmod(0o755)
    bin_dir = tmp_path / "bin"  # a PATH with the basics and no python3
    bin_dir.mkdir()
    for tool in ("mkdir", "setsid", "sleep"):
        (bin_dir / tool).symlink_to(
            subprocess.run(
                ["bash", "-c", f"command -v {tool}"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    words = shlex.split(bundle.start_command(60, str(tmp_path / "ws")))
    done = subprocess.run(
        ["/bin/sh", *words[1:]],
        env={"PATH": str(bin_dir), "RT_IMAGE_START": str(image_start)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert started.read_text() == "image-start\n"
