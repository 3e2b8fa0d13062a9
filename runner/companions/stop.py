"""`runner stop`: stop the stack's pod through the RunPod API (idempotent)."""

from __future__ import annotations

import argparse

from runner.output import as_invoked
from runner.pod.lifecycle import stop_pod
from runner.pod.stack import read_outputs_for
from runner.pod.state import PodState
from runner.pod.stops import StopLog
from runner.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings.require_api_key()
    outputs = read_outputs_for(settings)
    result = stop_pod(
        settings.client(), outputs.pod_id, stops=StopLog.at(settings.paths.ensure()), spot=outputs.is_spot
    )
    pod = f"pod {outputs.pod_id} (stack {outputs.stack})"
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
        said = f"{pod} was already {how}stopped ({result.pod.status if result.pod else 'EXITED'}); nothing to do."
    print(as_invoked(said))
    return 0
