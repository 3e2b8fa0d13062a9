"""Assumption 8: can a pod stop itself through REST v2 with its own pod-scoped RUNPOD_API_KEY?

After GraphQL's retirement, and with runpodctl still on the retired REST v1, `POST /v2/pods/{id}/action
{"action": "stop"}` with the key RunPod puts in the pod's environment is the only way a pod can stop
itself (the end of a run, the idle stop). No public source says whether REST v2 accepts that key, so the
lifecycle's pod is created with a start command that asks for exactly that stop `after_s` seconds after
the container starts, then runs the image's own start script. The check never stops the pod itself
before the deadline: EXITED by then means the pod's own call worked; still RUNNING means it was refused
(or failed), and the end-of-run and idle stops fall back to the runner's (README "Assumptions").
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

from backends.runpod.client import RunPodClient
from backends.runpod.models import EXITED, RUNNING, TERMINATED
from runner.livecheck.findings import Report, Verdict

DEFAULT_AFTER_S = 60.0
GRACE_FLOOR_S = 15.0  # after the pod's request, how long RunPod may take to show EXITED, at the least
LOG_TAG = "rt-livecheck self-stop"

# What the container runs in the background; the key is read from its environment, never put in argv.
_PROBE = f"""import os, urllib.request, urllib.error
base = (os.environ.get("RT_REST_URL") or "https://api.runpod.io").rstrip("/")
req = urllib.request.Request(base + "/v2/pods/" + os.environ.get("RUNPOD_POD_ID", "") + "/action",
    data=b'{{"action":"stop"}}', method="POST",
    headers={{"Authorization": "Bearer " + os.environ.get("RUNPOD_API_KEY", ""), "Content-Type": "application/json"}})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print("{LOG_TAG}: HTTP", r.status, flush=True)
except urllib.error.HTTPError as e:
    print("{LOG_TAG}: HTTP", e.code, flush=True)
except Exception as e:
    print("{LOG_TAG} failed:", type(e).__name__, flush=True)
"""


def start_command(after_s: float) -> str:
    """`sh -c` for the container: the stop request after `after_s` in the background, then the image's
    own start script (sshd and the rest), as the stack's idle-stop start command does."""
    code = base64.b64encode(_PROBE.encode()).decode()
    image = "S=${RT_IMAGE_START:-/start.sh}; if [ -x $S ]; then exec $S; fi; exec sleep infinity"
    return f"sh -c '(sleep {after_s:g}; echo {code} | base64 -d | python3) & {image}'"


def observe(
    client: RunPodClient,
    pod_id: str,
    *,
    running_since: float,
    after_s: float,
    time_left: Callable[[], float],
    report: Report,
    poll_s: float,
    say: Callable[[str], None],
) -> None:
    """Wait, without stopping the pod, until it stopped itself or the deadline passed; find 8."""
    deadline = running_since + after_s + max(GRACE_FLOOR_S, after_s)
    say(f"waiting for pod {pod_id} to stop itself with its own key (asked {after_s:g}s after it started)")
    while True:
        pod = client.find_pod(pod_id)
        waited = time.monotonic() - running_since
        if pod is None or pod.status in (EXITED, TERMINATED):
            shown = pod.status if pod is not None else "gone"
            report.step("self-stop", True, f"{shown} {waited:.0f}s after RUNNING, with no stop call from this check")
            report.find(
                8,
                Verdict.CONFIRMED,
                f"the pod's own REST v2 stop (POST /v2/pods/{{id}}/action, its RUNPOD_API_KEY) took it {shown}",
            )
            return
        if pod.status != RUNNING:
            report.step("self-stop", False, f"the pod went {pod.status} while the check waited")
            report.find(8, Verdict.NOT_CHECKED, f"the pod went {pod.status} before its request could be seen")
            return
        now = time.monotonic()
        if now >= deadline:
            report.step("self-stop", True, f"still RUNNING {waited:.0f}s after it started (see assumption 8)")
            report.find(
                8,
                Verdict.REFUTED,
                f"the pod asked REST v2 to stop itself {after_s:g}s after it started and was still RUNNING "
                f"{waited:.0f}s after: the pod-scoped key was refused or the call failed (the container's log "
                f"has a '{LOG_TAG}' line). Pods cannot stop themselves: the runner's own stop is the fallback",
            )
            return
        if time_left() <= 0:
            report.step("self-stop", True, "the spending cap ran out before the deadline (not decided)")
            report.find(8, Verdict.NOT_CHECKED, "the spending cap ran out before the pod's stop could be seen")
            return
        time.sleep(max(0.05, min(poll_s, deadline - now, time_left())))


__all__ = ["DEFAULT_AFTER_S", "LOG_TAG", "observe", "start_command"]
