"""The pod's idle stop, from the runner's side: after a command started the pod and leaves it
running, it makes sure the pod-side watcher (remote/podside/idlewatch.py) is there with the stack's
time, for pods whose start command predates it (`runner train` does the same in its launcher)."""

from __future__ import annotations

import os

from runner.pod.stack_outputs import StackOutputs
from runner.remote.shell import Shell
from runner.types import Say

ENSURE_TIMEOUT_S = 30.0


def ensure_idle_stop(conn: Shell, outputs: StackOutputs, say: Say) -> None:
    """Start the watcher (a running one with the same time is left alone); a failure is a warning."""
    minutes = outputs.idle_stop_after_min
    if minutes <= 0:
        return
    from remote.podside.bundle import idle_watch_script
    from remote.podside.contract import Inputs

    script = idle_watch_script(
        minutes * 60, outputs.workspace, os.environ.get(Inputs.RP_ENV_FILE), os.environ.get(Inputs.IDLE_SSH_PORTS)
    )
    try:
        result = conn.run("bash -s", stdin=script.encode(), timeout=ENSURE_TIMEOUT_S)
        ok = result.exit_code == 0
    except Exception:  # noqa: BLE001 - the copy matters more; say it and go on
        ok = False
    if not ok:
        say(
            f"warning: could not start the pod's idle stop; pod {outputs.pod_id} stops only when you run "
            "`python -m runner stop`."
        )
