"""Where `runner train` trains: the surface the stack's pod, any SSH machine (--host) and this
machine (--local) share, so runner/train/ has one code path.

    target.preflight()            local checks only; never a billable call
    target.prepare(say)           make it reachable (pod: resume/start it, wait for the SSH banner);
                                  target.billing_from says since when this command pays for it
    target.connect() -> shell     SshConnection (pinned host key) or LocalShell: both a `Shell`; the kept
                                  one while it is alive, else a new one (target.open())
    target.borrowed()             `with` it for one use: a healthy link is kept for the next connect()
    target.keep(shell)            hand back a healthy link; target.drop_spare() closes it (the command
                                  ends, the pod may have moved)
    target.after_disconnect(...)  on every SSH drop: the Interrupted the pod's state means, or None
    target.finish(keep=...)       after training: make sure the pod is stopped (pod only)
    target.release_unused(say)    after a failed launch: stop the pod again if this run started it
PodTarget only, for automatic recovery (runner/train/recovery.py): observe(), resume(say),
recreate(say, replace=), wait_for_gpu(attempt, say) (--wait-for-capacity), abandon_recovery(say). Only PodTarget talks to the RunPod API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from runner.errors import PodNoCapacity, SettingsError
from runner.pod.pod import Seen
from runner.pod.state import PodState
from runner.remote.shell import Shell
from runner.settings import Settings
from runner.train.events import Interrupted, StopCause
from runner.types import Market, Say, TargetKind

if TYPE_CHECKING:
    from runner.train.options import TrainOptions
    from runner.train.remote_launch import RunPolicy

T = TypeVar("T")


class Recoverable(Protocol):
    """A target automatic recovery can bring back (runner/train/recovery.py)."""

    pod_id: str | None

    @property
    def spot_fallback(self) -> str: ...  # the stack's policy when spot is gone: fail | on-demand

    def observe(self) -> Seen | None: ...

    def resume(self, say: Say) -> bool: ...

    def recreate(self, say: Say, *, replace: bool = False) -> None: ...

    def wait_for_gpu(self, attempt: Callable[[], T], say: Say) -> T: ...


@dataclass(frozen=True)
class StopReport:
    text: str  # for the summary: how the pod ended up
    stopped_at: float | None  # time.time() when it was seen stopped (None: still running / no pod)
    ok: bool = True  # False: could not make sure it stopped (it may still bill)


NOTHING_TO_STOP = StopReport("not a RunPod pod: nothing to stop", None)


@dataclass
class Target:
    """Base: the parts the three targets share."""

    settings: Settings
    workspace: str = ""
    kind: TargetKind = TargetKind.LOCAL
    label: str = ""
    session: str = "train"  # RT_SESSION default
    stops_pod: bool = False  # RT_STOP_POD=1 makes sense (a RunPod pod that can stop itself)
    cost_per_hr: float | None = None
    pod_id: str | None = None
    billing_from: float | None = None  # time.time() since which this command pays for the target
    idle_stop_minutes: float = 0.0  # RT_IDLE_STOP_MINUTES: the pod's idle stop after this run (0: none)
    pod_slot: str = ""  # RT_POD_SLOT: the pod's folder of records on a volume several pods share
    shared_volume: bool = False  # RT_SHARED_VOLUME: the stack has several pods; each run its own checkout
    _spare: Shell | None = field(default=None, init=False, repr=False)  # the connection keep() holds

    @property
    def market(self) -> Market | None:
        """spot | on-demand for the stack's pod; None for any other machine."""
        return None

    @property
    def gpu_count(self) -> int | None:
        return None

    def recoverable(self) -> Recoverable | None:
        """What automatic recovery can do with this target (the stack's pod); None: it only reports."""
        return None

    def preflight(self) -> None: ...

    def prepare(self, say: Say) -> None: ...

    def connect(self) -> Shell:
        """A connection: the one kept (keep()) while it is alive, else a new one (open())."""
        conn, self._spare = self._spare, None
        if conn is not None and conn.is_active:
            return conn
        if conn is not None:
            conn.close()
        return self.open()

    def open(self) -> Shell:
        raise NotImplementedError

    @contextmanager
    def borrowed(self) -> Iterator[Shell]:
        """A connection for one use (`with`); kept for the next connect() when the use went well, closed
        when it raised (a link that failed is never handed out again)."""
        conn = self.connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        self.keep(conn)

    def keep(self, conn: Shell) -> None:
        """The caller is done with a healthy connection: the next connect() reuses it (an SSH handshake
        costs ~5 round trips on a real link: the launch, the follow and the end's ack share one)."""
        if conn is self._spare:
            return
        self.drop_spare()
        if conn.is_active:
            self._spare = conn
        else:
            conn.close()

    def drop_spare(self) -> None:
        """Close the kept connection: the command ends, or the target may have moved (the pod)."""
        conn, self._spare = self._spare, None
        if conn is not None:
            conn.close()

    def observe(self) -> Seen | None:
        """One API read (pod only)."""
        return None

    def after_disconnect(self, error: Exception, attempt: int, say: Say) -> Interrupted | None:
        """Called on every SSH drop: the interruption when the target went away (stop following), else None."""
        return None

    def finish(self, *, keep: bool, say: Say, deadline_s: float) -> StopReport:
        return NOTHING_TO_STOP

    def release_unused(self, say: Say) -> None:
        """After a launch failed: undo what prepare() started (pod: stop it if this run resumed it)."""

    def stop_now(self, say: Say) -> StopReport:
        return NOTHING_TO_STOP

    def run_policy(self, options: TrainOptions, settings: Settings) -> RunPolicy:
        """What the pod keeps with the run for a relaunch with nobody attached (remote_launch.RunPolicy):
        the run's limits, the webhooks ("" clears the pod's notify.json), training's secrets ({} clears the
        volume's; None when a named value is missing here, as for a watcher's relaunch from cron, leaves
        them: runner/secret_settings.py); the pod adds the stack's."""
        from runner.secret_settings import for_launch
        from runner.train.remote_launch import RunPolicy

        return RunPolicy(
            max_recoveries=options.max_recoveries,
            budget_usd=options.budget_usd,
            stall_minutes=options.stall_minutes,
            notify_urls=",".join(settings.notify_urls),
            train_secrets=for_launch(settings),
        )

    def hold(self, run_id: str, attempt: int | None, reason: str, say: Say) -> None:
        """Pod only: before a stop on purpose, tell the pod's own start not to resume this run."""

    def on_capacity_wait(self, told: Callable[[PodNoCapacity, int], object]) -> None:
        """Pod only: told(error, round) at each round of a --wait-for-capacity wait."""

    def abandon_recovery(self, say: Say) -> StopReport:
        """Ctrl-C during a recovery, before the relaunch (pod only: stop what the recovery brought up)."""
        return NOTHING_TO_STOP

    def repo(self) -> tuple[str, str]:
        """(RT_REPO_URL, RT_REPO_BRANCH)."""
        if not self.settings.repo_url:
            raise SettingsError(
                "set REPO_URL in .runpod.env (or the environment): the git URL of the training repo the "
                f"{'pod' if self.kind == TargetKind.POD else 'machine'} clones, e.g. https://github.com/you/your-repo.git "
                "(private repos: an https URL with a read-only token, or a deploy key on the machine)."
            )
        return self.settings.repo_url, self.settings.repo_branch

    def hints(self, stack_flag: str) -> list[tuple[str, str]]:
        """(what, command) pairs telling the user how to come back to a detached run."""
        return []


def interrupted(pod_id: str | None, state: str, change: str | None) -> Interrupted:
    """The interruption a pod found not running means (kind: its state; change: the cloud's own words)."""
    detail = f" ({change})" if change else ""
    why = {
        PodState.PREEMPTED: "was preempted (outbid by a higher spot bid)",
        PodState.STOPPED_BY_USER: "was stopped (by you, `runner stop`, or itself)",
        PodState.STOPPED_BY_RUNPOD: "was stopped by RunPod",
        PodState.GONE: "no longer exists",
    }.get(PodState(state), f"is {state}")
    return Interrupted(StopCause(state), f"pod {pod_id} {why}{detail}")


__all__ = ["NOTHING_TO_STOP", "StopReport", "Target", "interrupted"]
