"""The pod stops itself when training ends (unless RT_STOP_POD=0).

Order: RunPod's REST v2 with the pod's own key (urllib; the key goes only into the Authorization
header, never onto a command line or into the log), then `runpodctl pod stop`, then the older
`runpodctl stop pod` (runpodctl releases still call REST v1, retired on 2026-11-15), then REST v2
again a few times if its first failure looked transient. If all fail, the runner's own check after
the run is the last line of defence.

Credentials: RUNPOD_POD_ID / RUNPOD_API_KEY from RT_RP_ENV_FILE (read, never executed), else from
the environment the supervisor started with. RUNPOD_REST_URL: the environment, else the file.
Before the first request the pod writes <workspace>/.runner/self_stop.json, so the runner can tell
a self-stop from a preemption later without the API's status history. That write, and every other
before a stop, is best effort (before_stop): on a full volume the stop still goes out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from typing import Callable, Dict, Mapping, Optional, Tuple

from .contract import SelfStopKey, SelfStopReason, StopMethod
from .record import utc_now, write_json_atomic
from .rpenvfile import read_env_file

# The same request infra/runpod_client.RunPodClient.stop_pod sends (docs/internals/runpod-api.md, "Which API for what").
DEFAULT_REST_URL = "https://api.runpod.io"
POD_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
REST_STOP_BODY = b'{"action":"stop"}'

REST_TIMEOUT_S = 15.0
RUNPODCTL_TIMEOUT_S = 60.0
RUNPODCTL_OUTPUT_KEPT = 4096  # bytes of runpodctl's output copied into the log
REST_RETRY_DELAYS_S = (1.0, 2.0)


class Credentials:
    def __init__(self, pod_id: str, api_key: str, rest_base: str):
        self.pod_id = pod_id
        self.api_key = api_key
        self.rest_base = rest_base

    def __repr__(self) -> str:  # never the key
        return f"Credentials(pod_id={self.pod_id!r}, rest_base={self.rest_base!r})"


def read_credentials(
    env_file: str, environ: Mapping[str, str], key_from_env: Optional[str], note: Callable[[str], None]
) -> Credentials:
    values = read_env_file(env_file)
    if values is None:
        note(f"stop: {env_file} not readable; using RUNPOD_POD_ID/RUNPOD_API_KEY from the environment")
        values = {}
    pod_id = values.get("RUNPOD_POD_ID") or environ.get("RUNPOD_POD_ID") or ""
    key = values.get("RUNPOD_API_KEY") or key_from_env or ""
    base = environ.get("RUNPOD_REST_URL") or values.get("RUNPOD_REST_URL") or DEFAULT_REST_URL
    return Credentials(pod_id, key, base)


def rest_stop_url(rest_base: str, pod_id: str) -> str:
    return f"{rest_base.rstrip('/')}/v2/pods/{pod_id}/action"


def write_marker(
    path: str, run_id: Optional[str], attempt: Optional[int], reason: str = SelfStopReason.RUN_ENDED
) -> None:
    write_json_atomic(
        path,
        {
            SelfStopKey.RUN_ID: run_id,
            SelfStopKey.ATTEMPT: attempt,
            SelfStopKey.AT: utc_now(),
            SelfStopKey.REASON: reason,
        },
    )


def before_stop(what: str, write: Callable[[], object], note: Callable[[str], None]) -> None:
    """A write that comes before a stop (the state, the marker, a log line): best effort. A full volume
    fails every write, and the stop must go out all the same."""
    try:
        write()
    except Exception as exc:  # noqa: BLE001 - OSError (ENOSPC, EIO) above all, but nothing may block the stop
        note(f"stop: could not {what} ({getattr(exc, 'strerror', None) or exc}); stopping anyway")


def rest_stop(creds: Credentials) -> Tuple[bool, bool, str]:
    """One REST v2 stop request: (stopped, worth retrying, what happened)."""
    import urllib.error  # here, not at the top: the launcher imports this module and never stops
    import urllib.request  # the pod (~35 ms of http.client/email/ssl); the supervisor imports it once training runs

    request = urllib.request.Request(
        rest_stop_url(creds.rest_base, creds.pod_id),
        data=REST_STOP_BODY,
        method="POST",
        headers={"Authorization": "Bearer " + creds.api_key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REST_TIMEOUT_S) as response:
            response.read()
        return True, False, "ok"
    except urllib.error.HTTPError as exc:
        return False, exc.code >= 500 or exc.code == 429, f"REST v2 answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, True, f"REST v2 request failed: {getattr(exc, 'reason', exc)}"


def runpodctl_stop(argv_tail: Tuple[str, ...], creds: Credentials, environ: Mapping[str, str], log_path: str) -> bool:
    exe = shutil.which("runpodctl", path=environ.get("PATH"))
    if not exe:
        return False
    env: Dict[str, str] = dict(environ)
    if creds.api_key:
        env["RUNPOD_API_KEY"] = creds.api_key  # runpodctl reads it from its environment
    try:
        # Its output is captured, then copied to the log: written there directly, a full volume would
        # fail runpodctl's own writes and so its exit code, after the stop was asked for.
        proc = subprocess.run(
            [exe, *argv_tail, creds.pod_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=RUNPODCTL_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if proc.stdout:
        try:
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, proc.stdout[-RUNPODCTL_OUTPUT_KEPT:])
            finally:
                os.close(fd)
        except OSError:
            pass
    return proc.returncode == 0


def stop_pod(
    creds: Credentials,
    environ: Mapping[str, str],
    log_path: str,
    note: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Optional[str]:
    """Ask RunPod to stop this pod; returns the StopMethod that worked, or None."""
    if not POD_ID_RE.match(creds.pod_id):
        note("stop: RUNPOD_POD_ID is missing or malformed; cannot stop the pod")
        return None
    retry_rest = False
    if creds.api_key:
        stopped, retry_rest, what = rest_stop(creds)
        if stopped:
            return StopMethod.REST
        note(f"stop: {what}; trying runpodctl")
    else:
        note("stop: RUNPOD_API_KEY is not set (not in the environment file either); skipping the REST API")
    has_ctl = shutil.which("runpodctl", path=environ.get("PATH")) is not None
    if has_ctl:
        if runpodctl_stop(("pod", "stop"), creds, environ, log_path):
            return StopMethod.RUNPODCTL
        note("stop: 'runpodctl pod stop' failed; trying the older 'runpodctl stop pod'")
        if runpodctl_stop(("stop", "pod"), creds, environ, log_path):
            return StopMethod.RUNPODCTL_LEGACY
        note("stop: runpodctl failed")
    else:
        note("stop: runpodctl not installed")
    for delay in REST_RETRY_DELAYS_S if retry_rest else ():
        sleep(delay)
        stopped, retry_rest, what = rest_stop(creds)
        if stopped:
            return StopMethod.REST
        note(f"stop: {what}")
        if not retry_rest:
            break
    return None
