"""Make the stack's pod run and reachable over SSH, and stop it: plain functions over a RunPodClient.

The SSH endpoint always comes from the API at the moment of use: RunPod assigns a new public port
on every start, so the stack outputs' ssh_host/ssh_port are only where the pod was when created.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from backends.polling import Backoff
from backends.runpod.client import RunPodClient
from backends.runpod.errors import InvalidAction, NotFound, RunPodError
from backends.runpod.models import ERROR, EXITED, RUNNING, TERMINATED, Pod, SshEndpoint
from backends.ssh_probe import probe_ssh
from runner.errors import PodGone, PodStartTimeout, StackError, from_runpod_error
from runner.pod.stack import StackOutputs
from runner.pod.state import PodState, classify, with_user
from runner.pod.stops import RUNNER, StopLog
from runner.types import Say, say_nothing


@dataclass(frozen=True)
class RunningPod:
    pod: Pod
    ssh: SshEndpoint
    resumed: bool  # True when this call started a stopped pod


@dataclass(frozen=True)
class StopResult:
    pod_id: str
    previous: PodState  # classify() before the call
    stopped: bool  # True when this call stopped it; False when it was already stopped or gone
    pod: Pod | None


def _secs(x: float) -> str:
    return f"{x:.0f}s" if x >= 10 else f"{x:.1f}s"


def _read(client: RunPodClient, pod_id: str, *, with_history: bool) -> Pod | None:
    try:
        return client.find_pod(pod_id, with_history=with_history)
    except NotFound:
        return None
    except RunPodError as e:
        raise from_runpod_error(e, pod_id=pod_id) from None


def _gone(pod_id: str, when: str = "") -> PodGone:
    return PodGone(
        f"pod {pod_id} no longer exists{when}; run `pulumi up` to recreate it "
        "(the network volume and its checkpoints are kept)."
    )


def _resume(client: RunPodClient, outputs: StackOutputs, pod: Pod, say: Say) -> None:
    # The API knows whether the pod is spot; the stack's market is the fallback when it does not say.
    spot = pod.interruptible if pod.interruptible is not None else outputs.is_spot
    gpu_count = outputs.gpu_count or pod.gpu_count or 1
    if spot and (outputs.bid_per_gpu is None or outputs.bid_per_gpu <= 0):
        raise StackError(
            f"the stack has no bid_per_gpu output, needed to resume spot pod {pod.id}; "
            "run `pulumi up` to refresh the outputs."
        )
    for attempt in (1, 2):
        try:
            if spot:
                assert outputs.bid_per_gpu is not None  # checked above for a spot pod
                say(f"resuming spot pod {pod.id}: bid ${outputs.bid_per_gpu:.3f}/GPU-hour x {gpu_count} GPU")
                client.resume_spot_pod(pod.id, outputs.bid_per_gpu, gpu_count)
            else:
                say(f"starting on-demand pod {pod.id}")
                client.start_pod(pod.id)
            return
        except InvalidAction as e:
            now = _read(client, pod.id, with_history=False)
            if now is None or now.status == TERMINATED:
                raise _gone(pod.id) from None
            if now.status not in (EXITED, ERROR):
                say(f"pod {pod.id} is already {now.status}; waiting for it")  # started meanwhile
                return
            text = (e.message or "").lower()
            # Only when the API did not say which market the pod is in can the guess be wrong;
            # RunPod names the mismatch ("Cannot resume a spot pod as an on demand pod.").
            mismatch = ("spot pod as an on demand" in text and not spot) or ("on demand pod as a spot" in text and spot)
            if attempt == 1 and mismatch and pod.interruptible is None:
                spot = not spot
                if spot and (outputs.bid_per_gpu is None or outputs.bid_per_gpu <= 0):
                    raise StackError(
                        f"pod {pod.id} is a spot pod but the stack has no bid_per_gpu output; "
                        "run `pulumi up` to refresh the outputs."
                    ) from None
                continue
            raise from_runpod_error(e, pod_id=pod.id) from None
        except NotFound:
            raise _gone(pod.id) from None
        except RunPodError as e:
            raise from_runpod_error(e, pod_id=pod.id) from None


def ensure_running(
    client: RunPodClient,
    outputs: StackOutputs,
    *,
    deadline_s: float,
    on_progress: Say | None = None,
    probe: Callable[[str, int, float], bool] = lambda host, port, timeout: probe_ssh(host, port, timeout).ok,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    first_poll_s: float = 1.0,
    max_poll_s: float = 10.0,
    probe_timeout_s: float = 10.0,
    stops: StopLog | None = None,
    on_resume: Callable[[], None] | None = None,
) -> RunningPod:
    """Return the pod RUNNING with an SSH endpoint that answers with an SSH banner, resuming it if stopped.

    Raises PodGone (terminated/unknown; recoverable through `pulumi up`), PodNoCapacity (recoverable),
    SpotUnavailableError, ApiAuthError/ApiError, StackError (outputs lack the bid), PodStartTimeout.
    on_resume is called just before the resume/start request: from then on the pod may bill, so a
    caller that fails later knows it must stop it again (runner/pod/link.py start_or_release).
    """
    say = on_progress or say_nothing
    pod_id = outputs.pod_id

    pod = _read(client, pod_id, with_history=True)
    state = classify(pod, stopped_by=stops.stopped_by(pod) if stops else None, spot=outputs.is_spot)
    if state == PodState.GONE:
        raise _gone(pod_id)
    assert pod is not None
    resumed = False
    if state.stopped:
        why = {
            PodState.PREEMPTED: (
                "preempted (outbid)"
                if pod.last_status_change
                else "interrupted (a spot pod that neither you nor the runner stopped)"
            ),
            PodState.STOPPED_BY_USER: "stopped",
            PodState.STOPPED_BY_RUNPOD: "stopped by RunPod",
        }[state]
        detail = f": {pod.last_status_change}" if pod.last_status_change else ""
        say(f"pod {pod_id} is {pod.status}, {why}{detail}")
        if on_resume is not None:
            on_resume()
        _resume(client, outputs, pod, say)
        resumed = True
        pod = None  # re-read: the record before the resume says nothing about the new start

    backoff = Backoff(deadline_s, first_s=first_poll_s, factor=2.0, cap_s=max_poll_s, sleep=sleep, clock=clock)
    last_seen: tuple | None = None
    problem = "no answer yet"
    while True:
        if pod is None:
            pod = _read(client, pod_id, with_history=False)
            if pod is None or pod.status == TERMINATED:
                raise _gone(pod_id, " (it disappeared while starting)")
        elapsed = backoff.elapsed
        if pod.status == RUNNING and pod.ssh is not None:
            ep = pod.ssh
            if last_seen != (RUNNING, ep):
                say(
                    f"pod {pod_id} is RUNNING; waiting for an SSH banner at {ep.host}:{ep.port} "
                    f"({_secs(elapsed)} elapsed, up to {_secs(deadline_s)})"
                )
            last_seen = (RUNNING, ep)
            if probe(ep.host, ep.port, max(0.1, min(probe_timeout_s, backoff.remaining))):
                return RunningPod(pod=pod, ssh=with_user(ep, outputs.ssh_user), resumed=resumed)
            problem = (
                f"the pod is RUNNING but {ep.host}:{ep.port} gives no SSH banner: the image may not "
                "start sshd (RunPod images do so only when the pod has PUBLIC_KEY / SSH enabled)"
            )
        else:
            shown = pod.status if pod.status != RUNNING else "RUNNING, no public SSH port yet"
            if last_seen != (pod.status, None):
                say(
                    f"waiting for pod {pod_id} to be RUNNING with SSH (now {shown}; "
                    f"{_secs(elapsed)} elapsed, up to {_secs(deadline_s)})"
                )
            last_seen = (pod.status, None)
            if pod.status == RUNNING:
                problem = "the pod is RUNNING but exposes no public SSH endpoint; the pod needs 22/tcp in its ports"
            elif pod.status in (EXITED, ERROR):
                change = f" ({pod.last_status_change})" if pod.last_status_change else ""
                problem = f"the pod is still {pod.status}{change}"
            else:
                problem = f"the pod is still {pod.status} (pulling the image can take minutes)"
        if not backoff.wait():
            raise PodStartTimeout(
                f"pod {pod_id} was not reachable over SSH within {_secs(deadline_s)}: {problem}. "
                "Retry (it keeps starting; raise POD_START_TIMEOUT for slow image pulls), "
                "check it with `python -m runner status`, or stop it with `python -m runner stop`."
            )
        pod = None


def stop_pod(
    client: RunPodClient, pod_id: str, *, stops: StopLog | None = None, spot: bool | None = None
) -> StopResult:
    """Stop the pod; fine when it is already stopped (no call) or gone (nothing to stop).

    With `stops`, the stop is recorded before the request (and forgotten if it fails), so the pod's
    EXITED reads as "stopped by the runner", not as a preemption, without GraphQL's history."""
    pod = _read(client, pod_id, with_history=True)
    previous = classify(pod, stopped_by=stops.stopped_by(pod) if stops else None, spot=spot)
    if previous == PodState.GONE:
        return StopResult(pod_id, previous, False, None)
    assert pod is not None
    if pod.status in (EXITED, ERROR):
        return StopResult(pod_id, previous, False, pod)
    if stops is not None:
        stops.record(pod, RUNNER)
    try:
        return _stop(client, pod_id, previous)
    except BaseException:
        if stops is not None:
            now = _read_quietly(client, pod_id)
            if now is None or now.status not in (EXITED, TERMINATED):
                stops.forget(pod)  # it did not stop: a later EXITED of this start is not ours
        raise


def _read_quietly(client: RunPodClient, pod_id: str) -> Pod | None:
    try:
        return client.find_pod(pod_id)
    except RunPodError:
        return None


def _stop(client: RunPodClient, pod_id: str, previous: PodState) -> StopResult:
    after: Pod | None
    try:
        after = client.stop_pod(pod_id)
    except NotFound:
        return StopResult(pod_id, PodState.GONE, False, None)
    except InvalidAction:
        # Raced with another stop (e.g. the pod stopping itself after training): re-read and accept EXITED.
        after = _read(client, pod_id, with_history=False)
        if after is None or after.status in (EXITED, TERMINATED):
            return StopResult(pod_id, previous, False, after)
        raise from_runpod_error(InvalidAction(f"cannot stop it while {after.status}"), pod_id=pod_id) from None
    except RunPodError as e:
        raise from_runpod_error(e, pod_id=pod_id) from None
    return StopResult(pod_id, previous, True, after)
