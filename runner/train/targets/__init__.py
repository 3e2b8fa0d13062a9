"""The three places `runner train` can train: the stack's pod, any SSH machine, this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.settings import Settings
from runner.train.options import TrainOptions
from runner.train.targets.base import StopReport, Target, interrupted
from runner.train.targets.pod import PodTarget

if TYPE_CHECKING:
    from runner.pod.early_link import EarlyLink


def make_target(options: TrainOptions, settings: Settings, *, early: EarlyLink | None = None) -> Target:
    """The target the options ask for (no I/O). --host and --local are imported only when asked for:
    the stack's pod is the common case, and every module costs start-up time."""
    workspace = options.workspace
    if options.local:
        from runner.train.targets.local import LocalTarget

        return LocalTarget(settings, workspace=workspace or "")
    host = options.host
    if host is not None:
        from runner.train.targets.host import HostTarget

        return HostTarget(settings, workspace=workspace or "", user=host.user, host=host.host, port=host.port)
    from runner.pod.capacity import CapacityWait

    return PodTarget(
        settings, workspace_override=workspace, early=early, capacity=CapacityWait(options.wait_for_capacity_s)
    )


__all__ = ["PodTarget", "StopReport", "Target", "interrupted", "make_target"]
