"""The stack's pod, owned in one place: what state it is in, making it run, stopping it, and undoing a
start this command made. Every command that touches the pod goes through a StackPod.

    pod = StackPod.of(settings)                 # outputs (cached) and an API client; no call yet
    seen = pod.look()                           # one read; seen.state decided with all the evidence
    running = pod.ensure_running(say=...)       # resume/start if stopped, wait for the SSH banner
    pod.stop()                                  # recorded before the request; fine when stopped or gone
    with pod.for_command(say=..., keep_running=False) as running:
        ...                                     # a pod this command started is stopped again at the end

The state is decided only here (state()): the cloud's facts (backends/runpod/dialect.py) with this
machine's evidence, the stops it knows of per pod start (runner/pod/stops.py, including the pod's own
self-stop marker read through S3 when the stack has it) and the stack's market. So `status`, `doctor`,
`stop`, `sync` and recovery read a stopped pod the same way, with or without GraphQL's history.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from backends.runpod import dialect
from backends.runpod.client import RunPodClient
from backends.runpod.errors import InvalidAction, NotFound, RunPodError
from backends.runpod.models import Pod, SshEndpoint
from backends.states import StopReason
from runner.errors import PodNotRunning, RunnerError, from_runpod_error
from runner.pod import lifecycle
from runner.pod.stack import read_outputs_for
from runner.pod.stack_outputs import StackOutputs
from runner.pod.state import PodState, decide
from runner.pod.stops import POD, RUNNER, StopLog
from runner.pod.volume_marker import lazy_marker
from runner.settings import Settings
from runner.types import Say, say_nothing


@dataclass(frozen=True)
class Seen:
    """One read of the pod: the state decided from it, and the pod as the API gave it (None: gone)."""

    state: PodState
    pod: Pod | None

    @property
    def detail(self) -> str | None:
        """The cloud's own words on why it is stopped or gone, for messages."""
        return dialect.facts(self.pod).detail


@dataclass(frozen=True)
class RunningPod:
    pod: Pod
    ssh: SshEndpoint
    resumed: bool  # True when this call started a stopped pod


@dataclass(frozen=True)
class StopResult:
    pod_id: str
    previous: PodState  # the state before the call
    stopped: bool  # True when this call stopped it; False when it was already stopped or gone
    pod: Pod | None


def with_user(endpoint: SshEndpoint, default_user: str) -> SshEndpoint:
    """The API leaves the SSH user out for most images; the stack's ssh_user (root) fills it in."""
    return endpoint if endpoint.user else replace(endpoint, user=default_user)


class StackPod:
    def __init__(self, outputs: StackOutputs, client: RunPodClient, stops: StopLog, *, start_timeout_s: float):
        self.outputs = outputs
        self.client = client
        self.stops = stops  # the stops this machine knows of (and the pod's own marker, read through S3)
        self.start_timeout_s = start_timeout_s
        self.started_here = False  # this command asked RunPod to resume or start the pod

    @classmethod
    def of(
        cls, settings: Settings, *, outputs: StackOutputs | None = None, client: RunPodClient | None = None
    ) -> StackPod:
        outputs = outputs or read_outputs_for(settings)
        stops = StopLog.at(settings.paths, lazy_marker(settings, outputs))
        return cls(outputs, client or settings.client(), stops, start_timeout_s=settings.pod_start_timeout_s)

    @property
    def pod_id(self) -> str:
        return self.outputs.pod_id

    # -- reading --------------------------------------------------------------------------------
    def read(self, *, with_history: bool = True) -> Pod | None:
        """The pod as the API gives it, None when it is gone. RunnerError (ApiError, ...) when the API fails.
        with_history: and why it stopped, when it is stopped (one more request; none for a running pod)."""
        try:
            pod = self.client.find_pod(self.pod_id)
            if with_history and pod is not None and dialect.history_helps(pod):
                pod = self.client.add_history(pod)
            return pod
        except NotFound:
            return None
        except RunPodError as e:
            raise from_runpod_error(e, pod_id=self.pod_id) from None

    def state(self, pod: Pod | None) -> PodState:
        """The one place a pod's state is decided (see the module docstring)."""
        facts = dialect.facts(pod)
        # Who stopped it matters only when the cloud does not say (no history): then the stops this machine
        # knows of, and the pod's own marker on the volume, are read.
        stopped_by = self.stops.stopped_by(pod) if facts.reason == StopReason.UNKNOWN else None
        spot = pod.interruptible if pod is not None and pod.interruptible is not None else self.outputs.is_spot
        return decide(facts, stopped_by=stopped_by, spot=spot)

    def look(self, *, with_history: bool = True) -> Seen:
        pod = self.read(with_history=with_history)
        return Seen(self.state(pod), pod)

    def observe(self) -> Seen | None:
        """One read, for watchers: None when the API did not answer (never raises)."""
        try:
            return self.look()
        except RunnerError:
            return None

    def running_now(self) -> RunningPod:
        """The pod as it runs now, for commands that never start it (costs nothing); PodNotRunning if not."""
        seen = self.look()
        pod = seen.pod
        if seen.state != PodState.RUNNING or pod is None or pod.ssh is None:
            shown = pod.status if pod is not None else "gone"
            raise PodNotRunning(
                f"pod {self.pod_id} is not running ({shown}, {seen.state})",
                hint="This command does not start it. Start it with `python -m runner train` (or "
                "`python -m runner sync`, which starts it for the copy).",
            )
        return RunningPod(pod=pod, ssh=with_user(pod.ssh, self.outputs.ssh_user), resumed=False)

    # -- starting -------------------------------------------------------------------------------
    def ensure_running(
        self,
        *,
        say: Say = say_nothing,
        deadline_s: float | None = None,
        wait: lifecycle.StartWait | None = None,
    ) -> RunningPod:
        """The pod RUNNING with an SSH endpoint that answers with a banner, resumed or started if stopped.

        Raises PodGone (recoverable through `pulumi up`), PodNoCapacity (recoverable), SpotUnavailableError,
        ApiAuthError/ApiError, StackError (the outputs lack the bid), PodStartTimeout."""
        seen = self.look()
        if seen.state == PodState.GONE:
            raise lifecycle.gone(self.pod_id)
        assert seen.pod is not None
        resumed = False
        if seen.state.stopped:
            self.started_here = True  # from here on the pod may bill: a failure must stop it again
            lifecycle.resume(self.client, self.outputs, seen.pod, say, _why_stopped(seen))
            resumed = True
        pod = lifecycle.wait_reachable(
            self.client,
            self.pod_id,
            pod=None if resumed else seen.pod,
            deadline_s=self.start_timeout_s if deadline_s is None else deadline_s,
            say=say,
            wait=wait or lifecycle.StartWait(),
        )
        assert pod.ssh is not None
        return RunningPod(pod=pod, ssh=with_user(pod.ssh, self.outputs.ssh_user), resumed=resumed)

    def start_for_command(self, *, say: Say = say_nothing, release_on_interrupt: bool = True) -> RunningPod:
        """ensure_running(), and when it fails after this command started the pod (start timeout, the API,
        Ctrl-C): stop the pod again, so a failed start never leaves it billing; the error says so.
        release_on_interrupt=False leaves a Ctrl-C to a caller that stops the pod itself."""
        try:
            return self.ensure_running(say=say)
        except BaseException as e:
            if not self.started_here or (isinstance(e, KeyboardInterrupt) and not release_on_interrupt):
                raise
            note = self.release()
            if note is None:  # the resume itself was refused: nothing runs, nothing to say
                raise
            if isinstance(e, RunnerError):
                e.add_note_of_release(note)
            else:
                say(note)
            raise

    @contextmanager
    def for_command(self, *, say: Say = say_nothing, keep_running: bool = False) -> Iterator[RunningPod]:
        """The pod running for the block; one this command started is stopped again when the block fails,
        and at its end unless keep_running (a started pod the block could not use is stopped either way)."""
        running = self.start_for_command(say=say)
        used = False
        try:
            yield running
            used = True
        finally:
            if self.started_here and (not keep_running or not used):
                note = self.release()
                if note is not None:
                    say(note)

    def release(self, *, started_by: str = "This command had started") -> str | None:
        """Stop a pod this command started (or the stack just created for it) and no longer needs. One
        sentence saying so, or None when there was nothing to stop (it is not running)."""
        try:
            result = self.stop()
        except RunnerError as e:
            return (
                f"{started_by} pod {self.pod_id} and COULD NOT STOP it again ({e.message}): it may be "
                "billing; run `python -m runner stop`."
            )
        self.started_here = False
        if result.stopped:
            return f"{started_by} pod {self.pod_id}, so it stopped it again: nothing is left billing."
        return None

    # -- stopping -------------------------------------------------------------------------------
    def stop(self) -> StopResult:
        """Stop the pod; fine when it is already stopped (no call) or gone (nothing to stop).

        The stop is recorded before the request (and forgotten if it fails), so the pod's EXITED reads as
        "stopped by the runner", not as a preemption, without GraphQL's history."""
        seen = self.look()
        if seen.state == PodState.GONE:
            return StopResult(self.pod_id, seen.state, False, None)
        pod = seen.pod
        assert pod is not None
        if pod.is_stopped:
            return StopResult(self.pod_id, seen.state, False, pod)
        self.stops.record(pod, RUNNER)
        try:
            return self._stop(seen.state)
        except BaseException:
            now = self._read_quietly()
            if now is None or not (now.is_stopped or now.is_gone):
                self.stops.forget(pod)  # it did not stop: a later EXITED of this start is not ours
            raise

    def _stop(self, previous: PodState) -> StopResult:
        try:
            after = self.client.stop_pod(self.pod_id)
        except NotFound:
            return StopResult(self.pod_id, PodState.GONE, False, None)
        except InvalidAction:
            # Raced with another stop (e.g. the pod stopping itself after training): re-read and accept that.
            now = self.read(with_history=False)
            if now is None or now.is_stopped or now.is_gone:
                return StopResult(self.pod_id, previous, False, now)
            raise from_runpod_error(InvalidAction(f"cannot stop it while {now.status}"), pod_id=self.pod_id) from None
        except RunPodError as e:
            raise from_runpod_error(e, pod_id=self.pod_id) from None
        return StopResult(self.pod_id, previous, True, after)

    def _read_quietly(self) -> Pod | None:
        try:
            return self.client.find_pod(self.pod_id)
        except RunPodError:
            return None

    def noted_self_stop(self) -> None:
        """The runner saw this start of the pod stop itself after training: record it (only evidence for a
        later reading of its state, so a failure here never fails the run)."""
        try:
            pod = self.client.find_pod(self.pod_id)
            if pod is not None:
                self.stops.record(pod, POD)
        except (RunPodError, OSError):
            pass


def _why_stopped(seen: Seen) -> str:
    return {
        PodState.PREEMPTED: "preempted: outbid"
        if seen.detail
        else "interrupted: a spot pod that neither you nor the runner stopped",
        PodState.STOPPED_BY_USER: "stopped",
        PodState.STOPPED_BY_RUNPOD: "stopped by RunPod",
    }[seen.state]


__all__ = ["RunningPod", "Seen", "StackPod", "StopResult", "with_user"]
