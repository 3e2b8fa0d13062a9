"""The three places `runner train` can train: the stack's pod, any SSH machine, this machine."""

from __future__ import annotations

from runner.settings import Settings
from runner.train.targets.base import StopReport, Target, interruption
from runner.train.targets.pod import PodTarget


def make_target(args, settings: Settings) -> Target:
    """The target the flags ask for (no I/O). --host and --local are imported only when asked for:
    the stack's pod is the common case, and every module costs start-up time."""
    workspace = getattr(args, "workspace", None)
    if getattr(args, "local", False):
        from runner.train.targets.local import LocalTarget

        return LocalTarget(settings, workspace=workspace or "")
    host = getattr(args, "host", None)
    if host is not None:
        from runner.train.targets.host import HostTarget

        return HostTarget(settings, workspace=workspace or "", user=host.user, host=host.host, port=host.port)
    return PodTarget(settings, workspace_override=workspace)


__all__ = ["PodTarget", "StopReport", "Target", "interruption", "make_target"]
