"""`runner stop`: stop the stack's pod through the RunPod API (idempotent)."""

from __future__ import annotations

import argparse
import sys

from runner.output import as_invoked
from runner.pod.pod import StackPod
from runner.pod.state import PodState
from runner.settings import Settings
from runner.termtext import VALUE, for_stream


def _hold_first(settings: Settings, stack_pod: StackPod) -> None:
    """A running pod is told first that its run was stopped on purpose (runner/pod/hold.py), so its own
    start does not resume it later; best effort, and only over SSH to a running pod."""
    from remote.podside.contract import HoldReason
    from runner.errors import RunnerError
    from runner.output import plain as say
    from runner.pod.hold import hold_current
    from runner.pod.link import PodLink

    try:
        running = stack_pod.running_now()
    except RunnerError:
        return  # stopped or gone: nothing trains now
    try:
        with PodLink(settings, stack_pod, running).connect(timeout=10.0) as conn:
            hold_current(conn, stack_pod.outputs.volume_paths, HoldReason.STOP)
    except (RunnerError, OSError) as e:
        say(f"warning: could not mark the pod's run as stopped on purpose ({e}); its own start may resume it")


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings.require_api_key()
    stack_pod = StackPod.of(settings)
    _hold_first(settings, stack_pod)
    result = stack_pod.stop()
    pod = f"pod {stack_pod.pod_id} (stack {stack_pod.outputs.stack})"
    if result.previous == PodState.GONE:
        said = (
            f"{pod} no longer exists; nothing to stop. `pulumi up` recreates it; "
            "`pulumi destroy` also removes the network volume."
        )
    elif result.stopped:
        said = (
            f"stopped {pod}. Compute billing has stopped; the network volume keeps your data "
            "(and its storage charge). `python -m runner train` resumes from the last checkpoint."
        )
    else:
        how = "preempted (outbid) and is " if result.previous == PodState.PREEMPTED else ""
        status = f" ({for_stream(result.pod.status, sys.stdout, VALUE)})" if result.pod else ""
        said = f"{pod} was already {how}stopped{status}; nothing to do."
    print(as_invoked(said))
    return 0
