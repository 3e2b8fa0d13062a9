"""This machine as a training target (--local): the whole flow without a cloud."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from runner.errors import SettingsError
from runner.remote.local import LocalShell, launcher_environment
from runner.remote.shell import Shell
from runner.train.targets.base import Target
from runner.types import Say, TargetKind

LOCAL_WORKSPACE = ".local-workspace"
LOCAL_SESSION = "runner-local"  # keeps clear of a tmux session the user calls "train"


@dataclass
class LocalTarget(Target):
    def __post_init__(self) -> None:
        self.kind = TargetKind.LOCAL
        self.label = "this machine (--local)"
        self.session = LOCAL_SESSION
        self.workspace = self.workspace or str(self.settings.project_root / LOCAL_WORKSPACE)

    def preflight(self) -> None:
        missing = [tool for tool in ("bash", "tmux", "git", "python3") if shutil.which(tool) is None]
        if missing:
            raise SettingsError(
                f"--local needs {', '.join(missing)} on this machine; install them "
                f"(Debian/Ubuntu: sudo apt-get install -y {' '.join('python3-venv' if t == 'python3' else t for t in missing)})."
            )

    def prepare(self, say: Say) -> None:
        Path(self.workspace).mkdir(parents=True, exist_ok=True)
        self.billing_from = time.time()
        say(f"training on this machine; workspace {self.workspace}")

    def open(self) -> Shell:
        env = launcher_environment(secrets=self.settings.secrets())
        return LocalShell(env=env, cwd=self.workspace)

    def repo(self) -> tuple[str, str]:
        """Default: this project's own checkout (committed content), on its current branch."""
        if self.settings.repo_url:
            return self.settings.repo_url, self.settings.repo_branch
        root = self.settings.project_root
        if not (root / ".git").exists():
            raise SettingsError(
                f"--local trains from a git checkout: {root} is not one. Run it from a clone of the project "
                "or set REPO_URL to a training repo."
            )
        branch = self.settings.repo_branch
        if self.settings.sources.get("REPO_BRANCH", "default") == "default":
            out = subprocess.run(
                ["git", "-C", str(root), "symbolic-ref", "--quiet", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if out.returncode == 0 and out.stdout.strip():
                branch = out.stdout.strip()
        return str(root), branch

    def hints(self, stack_flag: str) -> list[tuple[str, str]]:
        log = os.path.join(self.workspace, "logs", "current.log")
        return [
            ("follow the log", shlex.join(["tail", "-f", log])),
            ("stop training", shlex.join(["tmux", "kill-session", "-t", self.session])),
        ]
