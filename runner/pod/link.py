"""Reach the stack's pod: stack outputs → RunPod client → the pod's current SSH endpoint → a pinned connection.

Every command that talks to the pod (train, sync, tensorboard, status, logs, ssh) goes through a
`PodLink`, so the rules live in one place: settings are checked before any API call, the SSH
endpoint comes from the API at the moment of use (it changes on every start), and host keys are
pinned per pod start (runner/remote/hostkeys.py). After an SSH drop, `reconnect()` asks the API
where the pod answers now and connects there, or says that the pod is no longer up.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.runpod.client import RunPodClient
from backends.runpod.errors import RunPodError
from backends.runpod.models import Pod, SshEndpoint
from runner.errors import (
    ApiError,
    PodError,
    PodLeft,
    PodNotRunning,
    PodStartTimeout,
    RunnerError,
    SshNotReady,
    from_runpod_error,
)
from runner.pod.lifecycle import RunningPod, ensure_running, stop_pod
from runner.pod.stack import StackOutputs, read_outputs_for
from runner.pod.state import PodState, classify, with_user
from runner.pod.stops import StopLog
from runner.pod.volume_marker import marker_reader
from runner.remote.hostkeys import HostKeyStore, pin_id_for_host
from runner.remote.ssh import SshConnection, SshTarget
from runner.settings import Settings
from runner.types import Say


@dataclass
class PodLink:
    """What a command needs to work with the pod: outputs, an API client and where SSH answers now."""

    settings: Settings
    outputs: StackOutputs
    client: RunPodClient
    running: RunningPod

    @property
    def pod_id(self) -> str:
        return self.outputs.pod_id

    @property
    def pod(self) -> Pod:
        return self.running.pod

    @property
    def endpoint(self) -> SshEndpoint:
        return self.running.ssh

    def connect(self, *, timeout: float = 20.0, keepalive: int = 15) -> SshConnection:
        """A connection to the endpoint last seen (no API call)."""
        return connect_endpoint(
            self.settings,
            self.endpoint,
            pin_id=self.pod_id,
            started_at=self.pod.started_at,
            timeout=timeout,
            keepalive=keepalive,
        )

    @property
    def stops(self) -> StopLog:
        """This machine's stop records, and the pod's own marker on the volume when S3 reaches it."""
        return StopLog.at(self.settings.paths, marker_reader(self.settings, self.outputs))

    def classify(self, pod: Pod | None) -> PodState:
        """classify() with what this machine knows: its own stops and the stack's market."""
        return classify(pod, stopped_by=self.stops.stopped_by(pod), spot=self.outputs.is_spot)

    def read_pod(self, *, with_history: bool = True) -> Pod | None:
        try:
            return self.client.find_pod(self.pod_id, with_history=with_history)
        except RunPodError as e:
            raise from_runpod_error(e, pod_id=self.pod_id) from None

    def observe(self) -> tuple[PodState, Pod | None] | None:
        """One API read: (state, pod), or None when the API did not answer. Never raises."""
        try:
            pod = self.read_pod(with_history=True)
        except ApiError:
            return None
        except PodError:
            pod = None
        return self.classify(pod), pod

    def refresh(self) -> tuple[PodState, Pod | None]:
        """One API read; a running pod's current endpoint becomes the link's. Raises ApiError."""
        try:
            pod = self.read_pod(with_history=True)
        except PodError:  # gone (not found)
            pod = None
        state = self.classify(pod)
        if state == PodState.RUNNING and pod is not None and pod.ssh is not None:
            self.running = RunningPod(pod=pod, ssh=with_user(pod.ssh, self.outputs.ssh_user), resumed=False)
        return state, pod

    def reconnect(self, *, timeout: float = 20.0, keepalive: int = 15) -> SshConnection:
        """Ask the API where the pod answers now and connect there.

        SshNotReady while it is starting again (retry); PodLeft when it is stopped or gone."""
        state, pod = self.refresh()
        if state == PodState.RUNNING:
            return self.connect(timeout=timeout, keepalive=keepalive)
        if state == PodState.STARTING:
            raise SshNotReady(f"pod {self.pod_id} is starting again")
        raise PodLeft(self.pod_id, state, pod)

    def ensure_running(self, *, on_progress: Say | None = None) -> RunningPod:
        """Start the pod again if needed and take its (new) endpoint; used after a preemption too."""
        # A Ctrl-C here (a recovery) is the session's to handle: abandon_recovery stops the pod.
        self.running = start_or_release(
            self.client,
            self.outputs,
            deadline_s=self.settings.pod_start_timeout_s,
            on_progress=on_progress,
            stops=self.stops,
            release_on_interrupt=False,
        )
        return self.running


def start_or_release(
    client: RunPodClient,
    outputs: StackOutputs,
    *,
    deadline_s: float,
    on_progress: Say | None = None,
    release_on_interrupt: bool = True,
    stops: StopLog | None = None,
) -> RunningPod:
    """ensure_running(), and when it fails (start timeout, the API, Ctrl-C) after this call asked
    RunPod to resume or start the pod: stop the pod again, so a failed start never leaves it billing.
    The error then says so; a pod that was already running or starting before is left as it was.
    release_on_interrupt=False leaves a Ctrl-C to a caller that stops the pod itself."""
    asked = False

    def resuming() -> None:
        nonlocal asked
        asked = True

    try:
        return ensure_running(
            client, outputs, deadline_s=deadline_s, on_progress=on_progress, on_resume=resuming, stops=stops
        )
    except BaseException as e:
        if not asked or (isinstance(e, KeyboardInterrupt) and not release_on_interrupt):
            raise
        note = release_after_failed_start(client, outputs.pod_id, stops=stops, spot=outputs.is_spot)
        if note is None:  # the resume itself was refused: nothing runs, nothing to say
            raise
        if isinstance(e, RunnerError):
            add_release_note(e, note)
        elif on_progress is not None:
            on_progress(note)
        raise


def add_release_note(e: RunnerError, note: str) -> None:
    """Say in the error itself that the pod was stopped again (its own "stop it yourself" hint goes)."""
    head = e.message
    if isinstance(e, PodStartTimeout):
        head = head.split(". Retry (it keeps starting", 1)[0]
        note += " Retry when the cause is fixed (slow image pulls: raise POD_START_TIMEOUT)."
    e.message = f"{head.rstrip('.')}. {note}"
    e.args = (e.message,)


def release_after_failed_start(
    client: RunPodClient, pod_id: str, *, stops: StopLog | None = None, spot: bool | None = None
) -> str | None:
    """Stop a pod this command resumed/started and then could not use. One sentence saying so, or
    None when there was nothing to stop (the pod is not running)."""
    try:
        result = stop_pod(client, pod_id, stops=stops, spot=spot)
    except RunnerError as e:
        return (
            f"This command had started pod {pod_id} and COULD NOT STOP it again ({e.message}): it may be "
            "billing; run `python -m runner stop`."
        )
    if result.stopped:
        return f"This command had started pod {pod_id}, so it stopped it again: nothing is left billing."
    return None


def open_pod_link(
    settings: Settings,
    *,
    start_if_stopped: bool,
    on_progress: Say | None = None,
    outputs: StackOutputs | None = None,
) -> PodLink:
    """Check the local settings, read the stack outputs, and make sure the pod runs (or say it does not).

    start_if_stopped=False never starts anything (costs nothing): a stopped pod raises PodNotRunning.
    """
    settings.preflight()
    outputs = outputs or read_outputs_for(settings)
    client = settings.client()
    if start_if_stopped:
        running = start_or_release(
            client,
            outputs,
            deadline_s=settings.pod_start_timeout_s,
            on_progress=on_progress,
            stops=StopLog.at(settings.paths),
        )
        return PodLink(settings, outputs, client, running)
    try:
        pod = client.find_pod(outputs.pod_id, with_history=True)
    except RunPodError as e:
        raise from_runpod_error(e, pod_id=outputs.pod_id) from None
    stops = StopLog.at(settings.paths, marker_reader(settings, outputs))
    state = classify(pod, stopped_by=stops.stopped_by(pod), spot=outputs.is_spot)
    if state != PodState.RUNNING or pod is None or pod.ssh is None:
        shown = pod.status if pod is not None else "gone"
        raise PodNotRunning(
            f"pod {outputs.pod_id} is not running ({shown}, {state}); this command does not start it. "
            "Start it with `python -m runner train` (or `python -m runner sync`, which starts it for the copy)."
        )
    running = RunningPod(pod=pod, ssh=with_user(pod.ssh, outputs.ssh_user), resumed=False)
    return PodLink(settings, outputs, client, running)


def connect_endpoint(
    settings: Settings,
    endpoint: SshEndpoint,
    *,
    pin_id: str | None = None,
    started_at: str | None = None,
    timeout: float = 20.0,
    keepalive: int = 15,
    unreachable_hint: str | None = None,
) -> SshConnection:
    """An SSH connection with the settings' key; host key pinned under pin_id (pod id) or host:port.
    unreachable_hint: what the error tells to check when nothing answers (default: the pod's)."""
    target = SshTarget(endpoint.host, int(endpoint.port), endpoint.user or "root", str(settings.ssh_key_path))
    store = HostKeyStore(settings.paths.ensure().known_hosts)
    policy = store.policy(
        pin_id or pin_id_for_host(endpoint.host, int(endpoint.port)),
        started_at=started_at,
        endpoint=f"{endpoint.host}:{endpoint.port}",
    )
    extra = {"unreachable_hint": unreachable_hint} if unreachable_hint else {}
    return SshConnection.open(target, host_key_check=policy, timeout=timeout, keepalive=keepalive, **extra)


__all__ = [
    "PodLink",
    "connect_endpoint",
    "open_pod_link",
    "add_release_note",
    "release_after_failed_start",
    "start_or_release",
]
