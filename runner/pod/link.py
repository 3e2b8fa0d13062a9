"""The SSH link to the stack's pod: where it answers now, and a pinned connection there.

A PodLink is a StackPod (runner/pod/pod.py: the pod's one owner) and the endpoint it was last seen
running at. `connect()` opens a connection there; after an SSH drop `reconnect()` asks the API where the
pod answers now and connects there, or says that the pod is no longer up. Host keys are pinned per pod
start (runner/remote/hostkeys.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.runpod.models import Pod, SshEndpoint
from runner.errors import PodLeft, SshNotReady
from runner.pod.pod import RunningPod, Seen, StackPod, with_user
from runner.pod.stack_outputs import StackOutputs
from runner.pod.state import PodState
from runner.remote.hostkeys import HostKeyStore, Vouched, announce, pin_id_for_host
from runner.remote.ssh import SshConnection, SshTarget
from runner.settings import Settings
from runner.types import Say


@dataclass
class PodLink:
    """The pod (its owner, StackPod) and where SSH answers now; settings for the key and the pins."""

    settings: Settings
    stack_pod: StackPod
    running: RunningPod

    @property
    def outputs(self) -> StackOutputs:
        return self.stack_pod.outputs

    @property
    def pod_id(self) -> str:
        return self.stack_pod.pod_id

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
            outputs=self.outputs,
        )

    def refresh(self) -> Seen:
        """One read of the pod; a running pod's current endpoint becomes the link's. Raises ApiError."""
        seen = self.stack_pod.look()
        if seen.state == PodState.RUNNING and seen.pod is not None and seen.pod.ssh is not None:
            self.running = RunningPod(seen.pod, with_user(seen.pod.ssh, self.outputs.ssh_user), resumed=False)
        return seen

    def reconnect(self, *, timeout: float = 20.0, keepalive: int = 15) -> SshConnection:
        """Ask the API where the pod answers now and connect there.

        SshNotReady while it is starting again (retry); PodLeft when it is stopped or gone."""
        seen = self.refresh()
        if seen.state == PodState.RUNNING:
            return self.connect(timeout=timeout, keepalive=keepalive)
        if seen.state == PodState.STARTING:
            raise SshNotReady(f"pod {self.pod_id} is starting again")
        shown = seen.pod.status if seen.pod is not None else str(seen.state)
        if seen.detail:
            shown = f"{shown}: {seen.detail}"
        raise PodLeft(self.pod_id, seen.state, shown)

    def ensure_running(self, *, on_progress: Say | None = None) -> RunningPod:
        """Start the pod again if needed and take its (new) endpoint; used after a preemption too.
        A Ctrl-C here (a recovery) is the session's to handle: it stops the pod itself."""
        self.running = self.stack_pod.start_for_command(say=on_progress or _quiet, release_on_interrupt=False)
        return self.running


def _quiet(_line: str) -> None:
    pass


def open_pod_link(
    settings: Settings,
    *,
    start_if_stopped: bool,
    on_progress: Say | None = None,
    outputs: StackOutputs | None = None,
) -> PodLink:
    """Check the local settings, read the stack outputs, and make sure the pod runs (or say it does not).

    start_if_stopped=False never starts anything (costs nothing): a stopped pod raises PodNotRunning.
    start_if_stopped=True stops a pod it started again when the start fails (StackPod.start_for_command).
    """
    settings.preflight()
    stack_pod = StackPod.of(settings, outputs=outputs)
    if start_if_stopped:
        return PodLink(settings, stack_pod, stack_pod.start_for_command(say=on_progress or _quiet))
    return PodLink(settings, stack_pod, stack_pod.running_now())


def _kept_host_keys(settings: Settings, outputs: StackOutputs) -> Vouched:
    from runner.pod.kept_host_key import kept_host_keys  # the pod side's names: once a connection is made

    return kept_host_keys(settings, outputs)


def connect_endpoint(
    settings: Settings,
    endpoint: SshEndpoint,
    *,
    pin_id: str | None = None,
    started_at: str | None = None,
    timeout: float = 20.0,
    keepalive: int = 15,
    unreachable_hint: str | None = None,
    outputs: StackOutputs | None = None,
) -> SshConnection:
    """An SSH connection with the settings' key; host key pinned under pin_id (pod id) or host:port.
    unreachable_hint: what the error tells to check when nothing answers (default: the pod's).
    outputs: the stack's pod; at the first connection its key is checked against the one it keeps on
    the volume when S3 can read it (runner/pod/kept_host_key.py)."""
    target = SshTarget(endpoint.host, int(endpoint.port), endpoint.user or "root", str(settings.ssh_key_path))
    store = HostKeyStore(settings.paths.ensure().known_hosts)
    pin = pin_id or pin_id_for_host(endpoint.host, int(endpoint.port))
    policy = store.policy(
        pin,
        started_at=started_at,
        endpoint=f"{endpoint.host}:{endpoint.port}",
        on_outcome=announce(pin, "pod" if pin_id else "host"),
        vouched=_kept_host_keys(settings, outputs) if outputs is not None and pin_id else None,
    )
    extra = {"unreachable_hint": unreachable_hint} if unreachable_hint else {}
    return SshConnection.open(target, host_key_check=policy, timeout=timeout, keepalive=keepalive, **extra)


__all__ = [
    "PodLink",
    "connect_endpoint",
    "open_pod_link",
]
