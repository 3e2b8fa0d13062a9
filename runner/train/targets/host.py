"""Any SSH machine as a training target (--host): no RunPod API, nothing to stop."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from backends.runpod.models import SshEndpoint
from runner import timeouts
from runner.pod.link import connect_endpoint
from runner.remote.banner import wait_for_ssh_banner
from runner.remote.shell import Shell
from runner.remote.ssh import HOST_UNREACHABLE
from runner.train.targets.base import Target
from runner.types import Say, TargetKind


@dataclass
class HostTarget(Target):
    user: str = "root"
    host: str = ""
    port: int = 22
    banner_wait_s: float | None = None  # default: runner/timeouts.py host_banner_s

    def __post_init__(self) -> None:
        self.kind = TargetKind.HOST
        self.label = f"{self.user}@{self.host}:{self.port}"
        self.workspace = self.workspace or "/workspace"

    def preflight(self) -> None:
        self.settings.require_ssh_key()

    def prepare(self, say: Say) -> None:
        deadline = self.banner_wait_s if self.banner_wait_s is not None else timeouts.current().host_banner_s
        wait_for_ssh_banner(self.host, self.port, deadline_s=deadline, on_wait=say)
        self.billing_from = time.time()

    def open(self) -> Shell:
        return connect_endpoint(
            self.settings, SshEndpoint(self.host, self.port, self.user), timeout=20.0, unreachable_hint=HOST_UNREACHABLE
        )

    def hints(self, stack_flag: str) -> list[tuple[str, str]]:
        log = f"{self.workspace.rstrip('/')}/logs/current.log"
        key = self.settings.ssh_key_path
        ssh = ["ssh", "-i", str(key), "-p", str(self.port), f"{self.user}@{self.host}"]
        return [
            ("follow the log", shlex.join([*ssh, shlex.join(["tail", "-f", log])])),
            ("stop training", shlex.join([*ssh, shlex.join(["tmux", "kill-session", "-t", self.session])])),
        ]
