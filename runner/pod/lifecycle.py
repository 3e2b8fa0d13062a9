"""The steps of starting the stack's pod, as plain functions over a RunPodClient (StackPod composes them).

    resume(client, outputs, pod, say, why)  the start request: spot with the stack's bid, on-demand otherwise
    wait_reachable(...)                 RUNNING with an SSH endpoint that answers with a banner, by a deadline

The SSH endpoint always comes from the API at the moment of use: RunPod assigns a new public port on
every start, so the stack outputs' ssh_host/ssh_port are only where the pod was when created.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backends.polling import Backoff
from backends.runpod import dialect
from backends.runpod.client import RunPodClient
from backends.runpod.errors import InvalidAction, NotFound, RunPodError
from backends.runpod.models import Pod
from backends.ssh_probe import probe_ssh
from runner.errors import PodGone, PodStartTimeout, StackError, from_runpod_error
from runner.output import Waiting
from runner.pod.stack_outputs import StackOutputs
from runner.types import Say


def _secs(x: float) -> str:
    return f"{x:.0f}s" if x >= 10 else f"{x:.1f}s"


def _read(client: RunPodClient, pod_id: str) -> Pod | None:
    try:
        return client.find_pod(pod_id, with_history=False)
    except NotFound:
        return None
    except RunPodError as e:
        raise from_runpod_error(e, pod_id=pod_id) from None


def gone(pod_id: str, when: str = "") -> PodGone:
    return PodGone(
        f"pod {pod_id} no longer exists{when}; run `pulumi up` to recreate it "
        "(the network volume and its checkpoints are kept)."
    )


def _probe(host: str, port: int, timeout: float) -> bool:
    return probe_ssh(host, port, timeout).ok


@dataclass(frozen=True)
class StartWait:
    """How the wait for a starting pod polls and probes (tests make it instant)."""

    probe: Callable[[str, int, float], bool] = field(default=_probe)
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)
    first_poll_s: float = 1.0
    max_poll_s: float = 10.0
    probe_timeout_s: float = 10.0


def _bid(outputs: StackOutputs, pod_id: str) -> float:
    if outputs.bid_per_gpu is None or outputs.bid_per_gpu <= 0:
        raise StackError(
            f"the stack has no bid_per_gpu output, needed to resume spot pod {pod_id}; "
            "run `pulumi up` to refresh the outputs."
        )
    return outputs.bid_per_gpu


def resume(client: RunPodClient, outputs: StackOutputs, pod: Pod, say: Say, why: str) -> None:
    """Ask RunPod to run a stopped pod again: spot with the stack's bid, on-demand otherwise (`why` it was
    stopped goes into the line that says so)."""
    # The API knows whether the pod is spot; the stack's market is the fallback when it does not say.
    spot = pod.interruptible if pod.interruptible is not None else outputs.is_spot
    gpu_count = outputs.gpu_count or pod.gpu_count or 1
    for attempt in (1, 2):
        try:
            if spot:
                bid = _bid(outputs, pod.id)
                say(f"resuming spot pod {pod.id} ({why}): bid ${bid:.3f}/GPU-hour x {gpu_count} GPU")
                client.resume_spot_pod(pod.id, bid, gpu_count)
            else:
                say(f"starting on-demand pod {pod.id} ({why})")
                client.start_pod(pod.id)
            return
        except InvalidAction as e:
            now = _read(client, pod.id)
            if now is None or now.is_gone:
                raise gone(pod.id) from None
            if not now.is_stopped:
                say(f"pod {pod.id} is already {now.status}; waiting for it")  # started meanwhile
                return
            # Only when the API did not say which market the pod is in can the guess be wrong; RunPod
            # then says which market it is in, and the other call is made once.
            real = dialect.refused_market(e.message)
            if attempt == 1 and pod.interruptible is None and real is not None and (real == "spot") != spot:
                spot = not spot
                continue
            raise from_runpod_error(e, pod_id=pod.id) from None
        except NotFound:
            raise gone(pod.id) from None
        except RunPodError as e:
            raise from_runpod_error(e, pod_id=pod.id) from None


def wait_reachable(
    client: RunPodClient, pod_id: str, *, pod: Pod | None, deadline_s: float, say: Say, wait: StartWait
) -> Pod:
    """Poll until the pod is running with an SSH endpoint that answers with a banner (`pod`: a read already
    made, or None). Raises PodGone when it disappears, PodStartTimeout at the deadline."""
    backoff = Backoff(
        deadline_s, first_s=wait.first_poll_s, factor=2.0, cap_s=wait.max_poll_s, sleep=wait.sleep, clock=wait.clock
    )
    last_seen: tuple | None = None
    waited = {"since": time.monotonic(), "limit_s": deadline_s}  # what the redrawn wait line counts
    problem = "no answer yet"
    while True:
        if pod is None:
            pod = _read(client, pod_id)
            if pod is None or pod.is_gone:
                raise gone(pod_id, " (it disappeared while starting)")
        if pod.is_running and pod.ssh is not None:
            ep = pod.ssh
            if last_seen != ("up", ep):
                say(Waiting(f"pod {pod_id} is {pod.status}; waiting for sshd at {ep.host}:{ep.port}", **waited))
            last_seen = ("up", ep)
            if wait.probe(ep.host, ep.port, max(0.1, min(wait.probe_timeout_s, backoff.remaining))):
                return pod
            problem = (
                f"the pod is {pod.status} but {ep.host}:{ep.port} gives no SSH banner: the image may not "
                "start sshd (RunPod images do so only when the pod has PUBLIC_KEY / SSH enabled)"
            )
        else:
            shown = f"{pod.status}, no public SSH port yet" if pod.is_running else pod.status
            if last_seen != (pod.status, None):
                say(Waiting(f"waiting for pod {pod_id} to be RUNNING with SSH (now {shown})", **waited))
            last_seen = (pod.status, None)
            if pod.is_running:
                problem = (
                    f"the pod is {pod.status} but exposes no public SSH endpoint; the pod needs 22/tcp in its ports"
                )
            elif pod.is_stopped:
                change = f" ({pod.last_status_change})" if pod.last_status_change else ""
                problem = f"the pod is still {pod.status}{change}"
            else:
                problem = f"the pod is still {pod.status} (pulling the image can take minutes)"
        if not backoff.wait():
            raise PodStartTimeout(
                f"pod {pod_id} was not reachable over SSH within {_secs(deadline_s)}: {problem}.",
                hint="Retry (it keeps starting; raise POD_START_TIMEOUT for slow image pulls), check it with "
                "`python -m runner status`, or stop it with `python -m runner stop`.",
            )
        pod = None


__all__ = ["StartWait", "gone", "resume", "wait_reachable"]
