"""The demo's cleanup inside a tmux pane: it ends its own tmux server, never the caller's, and a demo
ended by a closed pane (SIGHUP) or SIGTERM still removes what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from standins.demo import Demo
from standins.preemption import processes_under
from standins.private_tmux import private_tmux_env
from standins.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _tmux(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", *args], env=env, capture_output=True, text=True, timeout=10)


def test_the_demo_cleanup_leaves_the_callers_tmux_server_alone(tmp_path, monkeypatch):
    # The caller's server: a tmux server of the test's own, named in $TMUX as it is inside one of its panes.
    caller_sock = str(tmp_path / "caller.sock")
    plain = private_tmux_env(tmp_path / "unused")
    started = _tmux("-S", caller_sock, "new-session", "-d", "-s", "caller", "sleep 600", env=plain)
    assert started.returncode == 0, started.stderr
    try:
        server_pid = _tmux("-S", caller_sock, "display-message", "-p", "#{pid}", env=plain).stdout.strip()
        monkeypatch.setenv("TMUX", f"{caller_sock},{server_pid},0")
        monkeypatch.setenv("TMUX_PANE", "%0")

        demo = Demo(root=tmp_path / "demo", keep=True)
        demo.tmux_dir.mkdir(parents=True)
        own = private_tmux_env(demo.tmux_dir)
        assert _tmux("new-session", "-d", "-s", demo.session, "sleep 600", env=own).returncode == 0
        demo.close()

        assert _tmux("-S", caller_sock, "has-session", "-t", "=caller", env=plain).returncode == 0
        assert _tmux("has-session", "-t", f"={demo.session}", env=own).returncode != 0  # the demo's own is gone
    finally:
        _tmux("-S", caller_sock, "kill-server", env=plain)


def test_a_demo_ended_by_sighup_removes_its_sshd_and_temp_dir(tmp_path):
    env = private_tmux_env(tmp_path / "unused")
    env = {k: v for k, v in env.items() if not k.startswith(("RUNPOD_", "PULUMI_"))}
    env["TMPDIR"] = str(tmp_path)  # the demo's temp directory is made here
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.demo"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "python -m runner train" in line:  # the sshd, the fake API and the runner are up
                break
        demo_dirs = list(tmp_path.glob("rt-demo-*"))
        assert len(demo_dirs) == 1, seen
        assert processes_under(demo_dirs[0]), "the demo's sshd should be running"
        proc.send_signal(signal.SIGHUP)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 130, rest
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert "interrupted; everything the demo started is being removed" in rest
    wait_for(lambda: not processes_under(demo_dirs[0]), 10, "the demo's processes to be gone")
    assert not demo_dirs[0].exists()
