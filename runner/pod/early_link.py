"""The SSH connection to a running pod, opened in the background while the command still starts up.

`runner train` spends most of its first ~0.2 s importing itself and checking its input; the API read
and the SSH handshake are mostly waiting (on RunPod, on the pod's sshd, on the network). So the train
command starts an `EarlyLink` as soon as the modules it needs are imported (runner/train/command.py):
a daemon thread reads the stack outputs, asks the API about the pod once (only after the command's
input checks passed: `inputs_checked`, so a wrong config never reaches RunPod) and, when the pod is RUNNING
with an SSH endpoint, opens the pinned connection (runner/pod/link.py connect_endpoint: the same host
key rules as any other connection). The pod target takes the outputs, the pod and the connection when
it gets there (runner/train/targets/pod.py); anything else it does the usual way.

Nothing here can cost money: one read and one connection, never a start. Every error is kept back, not
raised: the usual path then meets the same problem and reports it with its own message. A connection
nobody took is closed (`discard`), also when it is only finished after the command gave up on it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from backends.runpod.client import RunPodClient
from backends.runpod.models import Pod
from runner.pod.link import connect_endpoint
from runner.pod.pod import with_user
from runner.pod.stack import read_outputs_for
from runner.pod.stack_outputs import StackOutputs
from runner.remote.ssh import SshConnection
from runner.settings import Settings


@dataclass(frozen=True)
class EarlyPod:
    """What the background read found: the pod RUNNING at its endpoint, a connection there, and the
    API client that asked."""

    pod: Pod
    connection: SshConnection
    client: RunPodClient


class EarlyLink:
    def __init__(self, settings: Settings, *, timeout: float = 20.0, keepalive: int = 15):
        self._settings = settings
        self._timeout = timeout
        self._keepalive = keepalive
        self._lock = threading.Lock()
        self._outputs_read = threading.Event()
        self._inputs_ok = threading.Event()  # the command's input checks passed: the API may be asked
        self._done = threading.Event()
        self._outputs: StackOutputs | None = None
        self._found: EarlyPod | None = None
        self._taken: SshConnection | None = None
        self._discarded = False
        self._thread = threading.Thread(target=self._work, name="early-link", daemon=True)

    @classmethod
    def start(cls, settings: Settings) -> EarlyLink:
        link = cls(settings)
        link._thread.start()
        return link

    def _work(self) -> None:
        try:
            self._settings.preflight()
            outputs = read_outputs_for(self._settings)
            self._outputs = outputs
            self._outputs_read.set()
            self._inputs_ok.wait()  # no API request for a command whose input is wrong
            if self._discarded:
                return
            client = self._settings.client()
            pod = client.find_pod(outputs.pod_id, with_history=False)  # RUNNING or not is enough
            if pod is None or not pod.is_running or pod.ssh is None or self._discarded:
                return
            conn = connect_endpoint(
                self._settings,
                with_user(pod.ssh, outputs.ssh_user),
                pin_id=outputs.pod_id,
                started_at=pod.started_at,
                timeout=self._timeout,
                keepalive=self._keepalive,
                outputs=outputs,
            )
            with self._lock:
                if self._discarded:
                    conn.close()
                    return
                self._found = EarlyPod(pod, conn, client)
        except BaseException:  # noqa: BLE001 - the usual path meets the same error and reports it
            return
        finally:
            self._outputs_read.set()
            self._done.set()

    def outputs(self) -> StackOutputs | None:
        """The stack outputs the thread read (waits for that read only), or None if it could not."""
        self._outputs_read.wait()
        return self._outputs

    def inputs_checked(self) -> None:
        """The command's input is valid: the thread may go on from the outputs to the API and SSH."""
        self._inputs_ok.set()

    def take(self, pod_id: str) -> EarlyPod | None:
        """The running pod and its open connection, once, for the pod the caller means; else None."""
        self._inputs_ok.set()
        self._done.wait()
        with self._lock:
            found, self._found = self._found, None
        if found is None:
            return None
        if found.pod.id != pod_id or not found.connection.is_active:
            found.connection.close()
            return None
        self._taken = found.connection
        return found

    def discard(self) -> None:
        """At the end of the command: close what nobody took (a connection that is still being opened is
        closed when it is), and the taken one in case its user never got to it (closing twice is fine)."""
        with self._lock:
            self._discarded = True
            found, self._found = self._found, None
        self._inputs_ok.set()  # a thread still waiting ends without asking anything
        for conn in (found.connection if found is not None else None, self._taken):
            if conn is not None:
                conn.close()


__all__ = ["EarlyLink", "EarlyPod"]
