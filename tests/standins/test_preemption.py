"""The pretend preemption kills the pod's container, never the runner's own programs: a `pulumi stack
output` the runner ran at that moment (its command line names the test's directory too) was killed once,
and a second `runner train` failed with "`pulumi stack output` failed … without an error message"."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

from standins.preemption import processes_under, runner_side
from standins.waiting import wait_for


def _sleeper(path) -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)", str(path)]


def test_the_container_is_what_the_pod_runs_and_not_what_the_runner_started(tmp_path, sshd):
    runner_program = subprocess.Popen(
        _sleeper(tmp_path / "project" / "stub")
    )  # like the runner's `pulumi stack output`
    remote = shlex.join(["exec", *_sleeper(tmp_path / "workspace" / "train.py")])
    session = subprocess.Popen(["ssh", *sshd.ssh_command_args(), sshd.destination, remote])
    try:
        pod_program = wait_for(
            lambda: processes_under(tmp_path / "workspace", spare=("ssh",)), 15, "the pod's program to start"
        )
        container = processes_under(tmp_path, spare_pids=runner_side(sshd.pid))
        assert len(pod_program) == 1
        assert container == pod_program
        assert runner_program.pid not in container
        assert runner_program.pid in processes_under(tmp_path)  # it would have been killed without runner_side
    finally:
        for pid in processes_under(tmp_path / "workspace"):  # the pod's program outlives its ssh client
            os.kill(pid, signal.SIGKILL)
        for proc in (runner_program, session):
            proc.kill()
            proc.wait()
