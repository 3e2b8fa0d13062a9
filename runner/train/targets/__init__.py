"""The three places `runner train` can train: the stack's pod, any SSH machine, this machine."""
from __future__ import annotations

from runner.settings import Settings
from runner.train.targets.base import StopReport, Target, interruption
from runner.train.targets.host import HostTarget
from runner.train.targets.local import LocalTarget
from runner.train.targets.pod import PodTarget


def make_target(args, settings: Settings) -> Target:
    """The target the flags ask for (no I/O)."""
    workspace = getattr(args, "workspace", None)
    if getattr(args, "local", False):
        return LocalTarget(settings, workspace=workspace or "")
    host = getattr(args, "host", None)
    if host is not None:
        return HostTarget(settings, workspace=workspace or "", user=host.user, host=host.host, port=host.port)
    return PodTarget(settings, workspace_override=workspace)


__all__ = ["HostTarget", "LocalTarget", "PodTarget", "StopReport", "Target", "interruption", "make_target"]
