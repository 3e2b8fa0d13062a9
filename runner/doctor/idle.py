"""The idle stop (docs/guide/idle-stop.md): is it on, and does the pod's start command carry it?"""

from __future__ import annotations

import shlex

from remote.podside.bundle import IDLE_COMMAND_MARK
from runner.doctor.check import Check, Context, named, ok, warn
from runner.doctor.runpod import client, raw_pod
from runner.doctor.stack import outputs_or_skip


@named("idle stop")
def idle_stop(ctx: Context) -> Check:
    name = "idle stop"
    o = outputs_or_skip(ctx, "`pulumi up` gives the pod its idle stop")
    minutes = o.idle_stop_after_min
    if minutes <= 0:
        return warn(
            name,
            "off (idleStopMinutes 0): a pod left running bills until someone stops it",
            "`pulumi config set idleStopMinutes 20 && pulumi up`",
        )
    data = raw_pod(ctx, client(ctx), o.pod_id)
    args = data.get("args") if data else None
    if isinstance(args, str) and IDLE_COMMAND_MARK not in args:
        return warn(
            name,
            f"after {minutes:g} min idle; pod {o.pod_id} was created before the idle stop, so it "
            "has it only after `runner train` (or `sync --keep-running`) started it, not after a "
            "start from the console",
            f"`{shlex.join(['pulumi', 'up', '--replace', o.pod_urn])}` when convenient (the volume stays)"
            if o.pod_urn
            else "replace the pod with `pulumi up --replace <pod urn>` when convenient (the volume stays)",
        )
    return ok(name, f"the pod stops itself after {minutes:g} min with no training, SSH session or tunnel")
