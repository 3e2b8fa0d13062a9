"""What `runner train` checks before any money is spent, beyond the settings and the config: the
workspace flag, branch and session names, the branch on the remote, the pushed tree."""

from __future__ import annotations

import os
import threading

from runner.errors import RunnerError, UsageError
from runner.settings import Settings
from runner.train import repo_check
from runner.train.console import Console
from runner.train.options import TrainOptions
from runner.train.targets import Target
from runner.train.train_config import TrainConfig
from runner.types import TargetKind


class _EarlyAnswer:
    """`git ls-remote` for the branch in a daemon thread (it can take a second over the network):
    it runs while the stack outputs are read, and never holds up an exit on an earlier error."""

    def __init__(self, repo_url: str, branch: str):
        self._answer: list = []
        self._thread = threading.Thread(
            target=lambda: self._answer.append(repo_check.ls_remote_branch(repo_url, branch)),
            name="ls-remote",
            daemon=True,
        )
        self._thread.start()

    def result(self):
        self._thread.join()
        return self._answer[0] if self._answer else None


def ask_remote_early(target: Target) -> _EarlyAnswer | None:
    """None when the repo or branch is unusable (the checks in check_repo then say why)."""
    try:
        repo_url, branch = target.repo()
        repo_check.check_branch_name(branch)
    except RunnerError:
        return None
    return _EarlyAnswer(repo_url, branch)


def check_repo(
    options: TrainOptions, settings: Settings, target: Target, cfg: TrainConfig, remote: _EarlyAnswer | None = None
) -> None:
    """What the pod would only find out after a resume: branch and session names, the branch on the
    remote, the config and TRAIN_SCRIPT in the pushed tree (runner/train/repo_check.py)."""
    repo_url, branch = target.repo()
    repo_check.check_branch_name(branch)
    repo_check.check_session(target.session)
    repo_check.check_repo(
        repo_url,
        branch,
        root=settings.project_root,
        paths=[cfg.rel_path, settings.train_script],
        allow_unpushed=options.allow_unpushed,
        say=Console(settings.secrets()).say,
        remote=remote.result() if remote else None,
    )


def check_workspace(options: TrainOptions, target: Target) -> None:
    ws = options.workspace
    if not ws:
        return
    if target.kind == TargetKind.LOCAL:
        target.workspace = os.path.abspath(os.path.expanduser(ws))
    elif not ws.startswith("/"):
        raise UsageError(f"--workspace must be an absolute path on the {target.kind} (got {ws!r}), e.g. /workspace")


__all__ = ["ask_remote_early", "check_repo", "check_workspace"]
