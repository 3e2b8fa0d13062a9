"""The stack's pod as a training target: resumed or started for the run, recovered after preemption."""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from backends.polling import Backoff, poll_until
from runner.errors import ApiError, PodNoCapacity, RunnerError, SpotUnavailableError, redact
from runner.output import Waiting
from runner.pod.capacity import CapacityWait, market_line
from runner.pod.judge import InterruptionJudge
from runner.pod.link import PodLink
from runner.pod.pod import RunningPod, Seen, StackPod, with_user
from runner.pod.stack import read_outputs_for, refresh_and_up_for, replace_and_up_for
from runner.pod.stack_outputs import StackOutputs
from runner.pod.state import PodState
from runner.remote.shell import Shell
from runner.train.events import Interrupted
from runner.train.targets.base import StopReport, Target, interrupted
from runner.types import Market, Say, TargetKind

if TYPE_CHECKING:
    from runner.pod.early_link import EarlyLink
    from runner.settings import Settings
    from runner.train.options import TrainOptions
    from runner.train.remote_launch import RunPolicy

T = TypeVar("T")


@dataclass
class PodTarget(Target):
    outputs: StackOutputs | None = None
    link: PodLink | None = None
    resumed: bool = False
    workspace_override: str | None = None
    recreating: bool = False  # inside recreate(), before the new outputs were read
    early: EarlyLink | None = None  # the API read and SSH connection started in the background
    capacity: CapacityWait | None = None  # --wait-for-capacity: how long a "no GPU" is waited out
    _drop_judge: InterruptionJudge = field(default_factory=lambda: InterruptionJudge(reads=2), init=False, repr=False)

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
        named = f"pod {self.outputs.pod} ({self.outputs.pod_id})" if self.outputs.pod else f"pod {self.outputs.pod_id}"
        self.label = f"{named} (stack {self.outputs.stack})"
        self.pod_slot, self.shared_volume = self.outputs.slot, self.outputs.shared_volume
        self.cost_per_hr = self.outputs.cost_per_hr
        self.idle_stop_minutes = self.outputs.idle_stop_after_min

    def prepare(self, say: Say) -> None:
        asked = time.time()
        self.drop_spare()  # a link to the pod as it was; prepare may move it
        if self._take_early(say, asked):
            return
        try:
            self.link = self._open_link(say)
        except SpotUnavailableError as e:
            # The stopped spot pod cannot be resumed with a bid (spot withdrawn, or GraphQL retired). Under
            # spot_fallback=on-demand the stack may replace it by an on-demand pod; under "fail" it may not.
            if self.outputs is None or self.outputs.spot_fallback != "on-demand":
                raise
            say(
                f"{e.headline}. The stack allows on-demand (spot_fallback=on-demand): "
                f"replacing pod {self.pod_id} through the stack"
            )
            self.recreate(say, replace=True)
            return
        self.resumed = self.link.running.resumed
        self._running(asked, say)

    def _open_link(self, say: Say) -> PodLink:
        """Start the pod if needed (a start that then fails stops it again: StackPod.start_for_command)."""
        self.settings.preflight()
        stack_pod = StackPod.of(self.settings, outputs=self.outputs)
        return PodLink(self.settings, stack_pod, self.wait_for_gpu(lambda: stack_pod.start_for_command(say=say), say))

    def wait_for_gpu(self, attempt: Callable[[], T], say: Say) -> T:
        """attempt(), tried again while RunPod has no GPU for the pod, as long as --wait-for-capacity allows."""
        if self.capacity is None or not self.capacity.enabled:
            return attempt()
        result = self.capacity.retry(attempt, say, market=self.market_now)
        self.capacity.reset()
        return result

    def run_policy(self, options: TrainOptions, settings: Settings) -> RunPolicy:
        """The run's policy with the stack's: auto-resume (autoResume) and the stall guard's default
        (stallMinutes) when --stall-minutes does not say."""
        policy = super().run_policy(options, settings)
        if self.outputs is None:
            return policy
        stall = options.stall_minutes if options.stall_minutes is not None else self.outputs.stall_minutes
        return dataclasses.replace(policy, auto_resume=self.outputs.auto_resume, stall_minutes=stall)

    def hold(self, run_id: str, attempt: int | None, reason: str, say: Say) -> None:
        """hold.json on the pod (runner/pod/hold.py), best effort: when it cannot be written the stop goes on."""
        from remote.podside.volumepaths import VolumePaths
        from runner.pod.hold import hold

        if self.link is None:
            return
        try:
            with self.link.connect(timeout=10.0) as conn:
                hold(conn, VolumePaths(self.workspace, self.pod_slot), run_id, attempt, reason)
        except (RunnerError, OSError) as e:
            say(
                f"warning: could not mark run {run_id} as stopped on purpose on the pod ({e}); "
                "the pod's own start may resume it"
            )

    def on_capacity_wait(self, told: Callable[[PodNoCapacity, int], object]) -> None:
        if self.capacity is not None:
            self.capacity.on_wait = told

    def market_now(self) -> str:
        """What RunPod lists now for the stack's GPU (stock and price), for a wait's round."""
        assert self.outputs is not None
        return market_line(StackPod.of(self.settings, outputs=self.outputs).client, self.outputs)

    def _take_early(self, say: Say, asked: float) -> bool:
        """The pod was RUNNING and answered SSH in the background read (runner/pod/early_link.py): the
        link is that pod, and the first connect() is that connection. Only for the first prepare()."""
        early, self.early = self.early, None
        found = early.take(self.pod_id) if early is not None and self.pod_id is not None else None
        if found is None:
            return False
        assert self.outputs is not None and found.pod.ssh is not None
        running = RunningPod(pod=found.pod, ssh=with_user(found.pod.ssh, self.outputs.ssh_user), resumed=False)
        self.link = PodLink(
            self.settings, StackPod.of(self.settings, outputs=self.outputs, client=found.client), running
        )
        self._spare = found.connection  # the first connect()'s (prepare() dropped any other)
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
    def gpu_count(self) -> int | None:
        return self.outputs.gpu_count if self.outputs is not None else None

    @property
    def spot_fallback(self) -> str:
        return self.outputs.spot_fallback if self.outputs is not None else "fail"

    def recoverable(self) -> PodTarget:
        return self

    @property
    def market(self) -> Market:
        pod = self.link.pod if self.link is not None else None
        if pod is not None and pod.interruptible is not None:
            return Market.SPOT if pod.interruptible else Market.ON_DEMAND
        return Market(self.outputs.market) if self.outputs is not None else Market.SPOT

    def observe(self) -> Seen | None:
        """One API read, or None when the API did not answer."""
        stack_pod = self.link.stack_pod if self.link is not None else StackPod.of(self.settings, outputs=self.outputs)
        return stack_pod.observe()

    def resume(self, say: Say) -> bool:
        """Make the same pod run again (spot: the stack's bid); True when it had to be started.
        Raises PodNoCapacity / PodGone / SpotUnavailableError / PodStartTimeout / ApiError."""
        self.drop_spare()
        asked = time.time()
        if self.link is None:  # a watcher recovering a run it never followed
            stack_pod = StackPod.of(self.settings, outputs=self.outputs)
            self.link = PodLink(
                self.settings, stack_pod, stack_pod.start_for_command(say=say, release_on_interrupt=False)
            )
            running = self.link.running
        else:
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
        self.drop_spare()
        old = self.pod_id
        asked = time.time()
        stack = self.settings.stack
        secrets = self.settings.secrets()
        urn = self.outputs.pod_urn if self.outputs is not None else None

        def stream(line: str) -> None:
            say(f"pulumi: {redact(line, secrets)}")

        self.recreating = True
        # The recovery lock is per machine: a runner or watcher on another machine may have recreated the pod
        # already. Replacing again would replace the pod it just relaunched the run on.
        current = read_outputs_for(self.settings)
        if current.pod_id != old:
            say(f"the stack's pod is now {current.pod_id}, not {old}: another runner or watcher recreated it; using it")
        elif replace and urn:
            command = shlex.join(["pulumi", "up", "--refresh", "--yes", "--replace", urn, "--stack", stack])
            say(f"replacing pod {old} through the stack: {command}")
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
        self.outputs = current if current.pod_id != old else read_outputs_for(self.settings)
        self.recreating = False
        self.pod_id = self.outputs.pod_id
        named = f"pod {self.outputs.pod} ({self.outputs.pod_id})" if self.outputs.pod else f"pod {self.outputs.pod_id}"
        self.label = f"{named} (stack {self.outputs.stack})"
        self.pod_slot, self.shared_volume = self.outputs.slot, self.outputs.shared_volume
        self.cost_per_hr = self.outputs.cost_per_hr
        if self.pod_id == old:
            say(f"the stack kept pod {old}; trying to start it again")
        stack_pod = StackPod.of(self.settings, outputs=self.outputs)
        try:
            self.link = PodLink(self.settings, stack_pod, stack_pod.start_for_command(say=say))
        except PodNoCapacity as e:
            if self.pod_id == old and not urn:
                raise PodNoCapacity(
                    e.summary,
                    cause=e.cause,
                    hint="`pulumi up --refresh` kept the stopped pod (a refresh does not replace a stopped pod). "
                    "Run `pulumi up` once so the stack exports pod_urn (then the runner replaces such a pod itself), "
                    "or retry later",
                ) from e
            raise
        except RunnerError as e:
            # The stack just created this pod for the run: unreachable, it must not stay up billing either.
            # (A pod the stack kept and this command started is stopped by start_for_command.)
            if self.pod_id != old and not stack_pod.started_here:
                note = stack_pod.release(started_by="The stack had just created")
                if note is not None:
                    e.add_note_of_release(note)
            raise
        # A fresh pod bills from its creation, i.e. from the `pulumi up` we just ran.
        self.resumed = self.link.running.resumed or self.pod_id != old
        self._running(asked, say)

    def abandon_recovery(self, say: Say) -> StopReport:
        """Ctrl-C while recovering, before training was relaunched: nothing trains on the pod, so
        whatever the recovery resumed, started or created is stopped (an already stopped or gone
        pod needs nothing). Interrupted during `pulumi up`, the stack may name a new pod by now."""
        self.drop_spare()
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

    def open(self) -> Shell:
        assert self.link is not None, "prepare() first"
        return self.link.connect(timeout=20.0, keepalive=15)

    def after_disconnect(self, error: Exception, attempt: int, say: Say) -> Interrupted | None:
        """An SSH drop asks the API; the pod is interrupted only once its answers say so consistently
        (runner/pod/judge.py), so a drop and a stale answer never start a recovery."""
        assert self.link is not None
        self.drop_spare()
        before = self.link.endpoint
        try:
            seen = self.link.refresh()
        except ApiError as e:
            # The API being unreachable says nothing about the pod; keep trying to reconnect.
            say(f"could not ask RunPod about pod {self.pod_id} ({e.message}); still reconnecting")
            return None
        if self._drop_judge.saw(seen, time.time()) is None and not seen.state.up:
            say(f"pod {self.pod_id} reads {seen.pod.status if seen.pod else 'gone'}; asking again before recovering")
            return None
        if seen.state == PodState.RUNNING:
            ep = self.link.endpoint
            if ep != before:
                say(f"pod {self.pod_id} now answers at {ep.host}:{ep.port}")
            return None
        if seen.state == PodState.STARTING:
            if attempt == 1:
                say(f"pod {self.pod_id} is {seen.pod.status if seen.pod else 'starting'}; waiting for it")
            return None
        return interrupted(self.pod_id, seen.state, seen.detail)

    def _wait_stopped(self, deadline_s: float) -> tuple[str | None, float | None]:
        """Poll the API until the pod is EXITED/gone; (status, when) or (None, None) at the deadline."""
        assert self.link is not None
        assert self.pod_id is not None  # set by preflight()
        link = self.link

        def stopped() -> str | None:
            try:
                pod = link.stack_pod.read(with_history=False)
            except RunnerError:  # an API hiccup: try again until the deadline
                pod = link.pod
            if pod is None or pod.is_stopped or pod.is_gone:
                return pod.status if pod else "gone"
            return None

        status = poll_until(stopped, Backoff(deadline_s, first_s=0.2, factor=1.5, cap_s=3.0))
        return (status, time.time()) if status is not None else (None, None)

    def finish(self, *, keep: bool, say: Say, deadline_s: float) -> StopReport:
        self.drop_spare()
        if keep:
            until = (
                f"it stops itself after {self.idle_stop_minutes:g} min idle (or `python -m runner stop`)"
                if self.idle_stop_minutes > 0
                else "`python -m runner stop`"
            )
            return StopReport(
                f"still running (--keep-pod): it bills ${self.cost_per_hr or 0:.3f}/h until {until}", None
            )
        say(Waiting(f"checking that pod {self.pod_id} stopped itself", limit_s=deadline_s))
        status, when = self._wait_stopped(deadline_s)
        if status is not None:
            if status != "gone" and self.link is not None:
                # Its self-stop: the same start must not later read as a preemption (no GraphQL history).
                self.link.stack_pod.noted_self_stop()
            return StopReport(f"stopped by itself ({status})", when)
        say(f"pod {self.pod_id} did not stop itself within {deadline_s:.0f}s; stopping it through the API")
        return self.stop_now(say)

    def stop_now(self, say: Say) -> StopReport:
        assert self.link is not None
        assert self.pod_id is not None  # set by preflight()
        try:
            result = self.link.stack_pod.stop()
        except RunnerError as e:
            return StopReport(
                f"COULD NOT BE STOPPED ({e.message}); it may still bill: run `python -m runner stop`", None, ok=False
            )
        text = "stopped by the runner" if result.stopped else "was already stopped"
        return StopReport(text, time.time())

    def release_unused(self, say: Say) -> None:
        self.drop_spare()
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
