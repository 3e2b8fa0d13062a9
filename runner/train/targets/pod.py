"""The stack's pod as a training target: resumed or started for the run, recovered after preemption."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backends.polling import Backoff, poll_until
from backends.runpod.models import EXITED, TERMINATED
from runner.errors import ApiError, RunnerError, SpotUnavailableError, redact
from runner.pod.lifecycle import RunningPod, stop_pod
from runner.pod.link import PodLink, add_release_note, open_pod_link, release_after_failed_start
from runner.pod.stack import StackOutputs, read_outputs_for, refresh_and_up_for, replace_and_up_for
from runner.pod.state import PodState, with_user
from runner.pod.stops import POD, StopLog
from runner.remote.shell import Shell
from runner.train.targets.base import StopReport, Target, interruption
from runner.types import Market, Say, TargetKind

if TYPE_CHECKING:
    from runner.pod.early_link import EarlyLink
    from runner.remote.ssh import SshConnection


@dataclass
class PodTarget(Target):
    outputs: StackOutputs | None = None
    link: PodLink | None = None
    resumed: bool = False
    workspace_override: str | None = None
    recreating: bool = False  # inside recreate(), before the new outputs were read
    early: EarlyLink | None = None  # the API read and SSH connection started in the background
    _early_connection: SshConnection | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.kind = TargetKind.POD
        self.stops_pod = True

    def preflight(self) -> None:
        self.settings.preflight()  # API key + SSH key, before any call
        if self.outputs is None and self.early is not None:
            self.outputs = self.early.outputs()  # read once: on a cache miss it is a `pulumi` run
        self.outputs = self.outputs or read_outputs_for(self.settings)
        self.pod_id = self.outputs.pod_id
        self.workspace = self.workspace_override or self.outputs.workspace or "/workspace"
        self.label = f"pod {self.outputs.pod_id} (stack {self.outputs.stack})"
        self.cost_per_hr = self.outputs.cost_per_hr
        self.idle_stop_minutes = self.outputs.idle_stop_after_min

    def prepare(self, say: Say) -> None:
        asked = time.time()
        if self._take_early(say, asked):
            return
        try:
            self.link = open_pod_link(self.settings, start_if_stopped=True, on_progress=say, outputs=self.outputs)
        except SpotUnavailableError as e:
            # The stopped spot pod cannot be resumed with a bid (spot withdrawn, or GraphQL retired). Under
            # spot_fallback=on-demand the stack may replace it by an on-demand pod; under "fail" it may not.
            if self.outputs is None or self.outputs.spot_fallback != "on-demand":
                raise
            say(
                f"{e.message.split('. ')[0]}. The stack allows on-demand (spot_fallback=on-demand): "
                f"replacing pod {self.pod_id} through the stack"
            )
            self.recreate(say, replace=True)
            return
        self.resumed = self.link.running.resumed
        self._running(asked, say)

    def _take_early(self, say: Say, asked: float) -> bool:
        """The pod was RUNNING and answered SSH in the background read (runner/pod/early_link.py): the
        link is that pod, and the first connect() is that connection. Only for the first prepare()."""
        early, self.early = self.early, None
        found = early.take(self.pod_id) if early is not None and self.pod_id is not None else None
        if found is None:
            return False
        assert self.outputs is not None and found.pod.ssh is not None
        running = RunningPod(pod=found.pod, ssh=with_user(found.pod.ssh, self.outputs.ssh_user), resumed=False)
        self.link = PodLink(self.settings, self.outputs, found.client, running)
        self._early_connection = found.connection
        self.resumed = False
        self._running(asked, say)
        return True

    def _running(self, asked: float, say: Say) -> None:
        """The link is up: this run pays from the moment it asked for a stopped pod, or from now."""
        assert self.link is not None
        self.billing_from = asked if self.resumed else time.time()
        if self.link.pod.cost_per_hr:
            self.cost_per_hr = self.link.pod.cost_per_hr
        ep = self.link.endpoint
        say(
            f"pod {self.pod_id} is running; SSH at {ep.user}@{ep.host}:{ep.port}"
            + (f", ${self.cost_per_hr:.3f}/h" if self.cost_per_hr else "")
        )

    @property
    def market(self) -> Market:
        pod = self.link.pod if self.link is not None else None
        if pod is not None and pod.interruptible is not None:
            return Market.SPOT if pod.interruptible else Market.ON_DEMAND
        return Market(self.outputs.market) if self.outputs is not None else Market.SPOT

    def observe(self) -> tuple[PodState, object] | None:
        """One API read: (state, pod), or None when the API did not answer."""
        assert self.link is not None
        return self.link.observe()

    def resume(self, say: Say) -> bool:
        """Make the same pod run again (spot: the stack's bid); True when it had to be started.
        Raises PodNoCapacity / PodGone / SpotUnavailableError / PodStartTimeout / ApiError."""
        assert self.link is not None
        asked = time.time()
        running = self.link.ensure_running(on_progress=say)
        self.resumed = running.resumed
        self._running(asked, say)
        return running.resumed

    def recreate(self, say: Say, *, replace: bool = False) -> None:
        """A new pod through the stack, never outside Pulumi's state; then the new outputs (pod id,
        maybe the on-demand market) and the new pod's SSH endpoint.

        replace=False: the pod is gone; `pulumi up --refresh --yes` (the refresh drops it, the up
        creates a new one). replace=True: the pod still exists but cannot run where it is; a refresh
        would keep it, so `--replace <pod_urn>` has the provider delete it and create a new one.
        Stacks from before the pod_urn output get the plain command and a warning."""
        old = self.pod_id
        asked = time.time()
        stack = self.settings.stack
        secrets = self.settings.secrets()
        urn = self.outputs.pod_urn if self.outputs is not None else None

        def stream(line: str) -> None:
            say(f"pulumi: {redact(line, secrets)}")

        self.recreating = True
        if replace and urn:
            say(f"replacing pod {old} through the stack: pulumi up --refresh --yes --replace {urn} --stack {stack}")
            replace_and_up_for(self.settings, urn, on_line=stream)
        else:
            if replace:
                say(
                    f"warning: stack {stack} has no pod_urn output (it was deployed by an older version), so the "
                    f"runner cannot ask Pulumi to replace pod {old}, and a refresh keeps a stopped pod where it is. "
                    "Run `pulumi up` once to get the output; trying the plain recreate now"
                )
            say(f"recreating the pod through the stack: pulumi up --refresh --yes --stack {stack}")
            refresh_and_up_for(self.settings, on_line=stream)
        self.outputs = read_outputs_for(self.settings)
        self.recreating = False
        self.pod_id = self.outputs.pod_id
        self.label = f"pod {self.outputs.pod_id} (stack {self.outputs.stack})"
        self.cost_per_hr = self.outputs.cost_per_hr
        if self.pod_id == old:
            say(f"the stack kept pod {old}; trying to start it again")
        try:
            self.link = open_pod_link(self.settings, start_if_stopped=True, on_progress=say, outputs=self.outputs)
        except RunnerError as e:
            # The stack just created this pod for the run: unreachable, it must not stay up billing.
            # (A pod the stack kept is handled by open_pod_link when it resumed it.)
            if self.pod_id != old:
                note = release_after_failed_start(
                    self.settings.client(),
                    self.pod_id,
                    stops=StopLog.at(self.settings.paths),
                    spot=self.outputs.is_spot,
                )
                if note is not None:
                    add_release_note(e, note.replace("This command had started", "The stack had just created"))
            raise
        # A fresh pod bills from its creation, i.e. from the `pulumi up` we just ran.
        self.resumed = self.link.running.resumed or self.pod_id != old
        self._running(asked, say)

    def abandon_recovery(self, say: Say) -> StopReport:
        """Ctrl-C while recovering, before training was relaunched: nothing trains on the pod, so
        whatever the recovery resumed, started or created is stopped (an already stopped or gone
        pod needs nothing). Interrupted during `pulumi up`, the stack may name a new pod by now."""
        if self.recreating:
            try:
                self.outputs = read_outputs_for(self.settings)
                self.pod_id = self.outputs.pod_id
            except RunnerError as e:
                say(f"could not read the stack outputs after the interrupted `pulumi up` ({e.message})")
            self.recreating = False
        if self.link is None:
            return StopReport("not started by this command", None)
        return self.stop_now(say)

    def connect(self) -> Shell:
        assert self.link is not None, "prepare() first"
        conn, self._early_connection = self._early_connection, None
        if conn is not None and conn.is_active:
            return conn
        if conn is not None:
            conn.close()
        return self.link.connect(timeout=20.0, keepalive=15)

    def after_disconnect(self, error: Exception, attempt: int, say: Say) -> None:
        assert self.link is not None
        before = self.link.endpoint
        try:
            state, pod = self.link.refresh()
        except ApiError as e:
            # The API being unreachable says nothing about the pod; keep trying to reconnect.
            say(f"could not ask RunPod about pod {self.pod_id} ({e.message}); still reconnecting")
            return
        if state == PodState.RUNNING:
            ep = self.link.endpoint
            if ep != before:
                say(f"pod {self.pod_id} now answers at {ep.host}:{ep.port}")
            return
        if state == PodState.STARTING:
            if attempt == 1:
                say(f"pod {self.pod_id} is {pod.status if pod else 'starting'}; waiting for it")
            return
        raise interruption(self.pod_id, state, pod)

    def _wait_stopped(self, deadline_s: float) -> tuple[str | None, float | None]:
        """Poll the API until the pod is EXITED/gone; (status, when) or (None, None) at the deadline."""
        assert self.link is not None
        assert self.pod_id is not None  # set by preflight()
        link, pod_id = self.link, self.pod_id

        def stopped() -> str | None:
            try:
                pod = link.client.find_pod(pod_id)
            except Exception:  # noqa: BLE001 - an API hiccup: try again until the deadline
                pod = link.pod
            if pod is None or pod.status in (EXITED, TERMINATED, "ERROR"):
                return pod.status if pod else "gone"
            return None

        status = poll_until(stopped, Backoff(deadline_s, first_s=0.2, factor=1.5, cap_s=3.0))
        return (status, time.time()) if status is not None else (None, None)

    def finish(self, *, keep: bool, say: Say, deadline_s: float) -> StopReport:
        if keep:
            until = (
                f"it stops itself after {self.idle_stop_minutes:g} min idle (or `python -m runner stop`)"
                if self.idle_stop_minutes > 0
                else "`python -m runner stop`"
            )
            return StopReport(
                f"still running (--keep-pod): it bills ${self.cost_per_hr or 0:.3f}/h until {until}", None
            )
        say(f"checking that pod {self.pod_id} stopped itself (up to {deadline_s:.0f}s)")
        status, when = self._wait_stopped(deadline_s)
        if status is not None:
            if status != "gone":
                # Its self-stop: the same start must not later read as a preemption (no GraphQL history).
                self._note_self_stop()
            return StopReport(f"stopped by itself ({status})", when)
        say(f"pod {self.pod_id} did not stop itself within {deadline_s:.0f}s; stopping it through the API")
        return self.stop_now(say)

    def _note_self_stop(self) -> None:
        assert self.link is not None and self.pod_id is not None
        try:
            pod = self.link.client.find_pod(self.pod_id)
            if pod is not None:
                StopLog.at(self.settings.paths).record(pod, POD)
        except Exception:  # noqa: BLE001 - only evidence for a later classification; never fail the run
            pass

    def stop_now(self, say: Say) -> StopReport:
        assert self.link is not None
        assert self.pod_id is not None  # set by preflight()
        try:
            result = stop_pod(
                self.link.client,
                self.pod_id,
                stops=StopLog.at(self.settings.paths),
                spot=self.outputs.is_spot if self.outputs is not None else None,
            )
        except RunnerError as e:
            return StopReport(
                f"COULD NOT BE STOPPED ({e.message}); it may still bill: run `python -m runner stop`", None, ok=False
            )
        text = "stopped by the runner" if result.stopped else "was already stopped"
        return StopReport(text, time.time())

    def release_unused(self, say: Say) -> None:
        if self.link is None:
            return
        if not self.resumed:
            say(
                f"pod {self.pod_id} was already running before this command; it is left running "
                "(`python -m runner stop` stops it)"
            )
            return
        report = self.stop_now(say)
        say(f"nothing was started, so pod {self.pod_id} {report.text}")

    def hints(self, stack_flag: str) -> list[tuple[str, str]]:
        return [
            ("follow the log", f"python -m runner logs -f{stack_flag}"),
            ("progress and cost", f"python -m runner status{stack_flag}"),
            ("stop the pod now", f"python -m runner stop{stack_flag}"),
        ]
