"""`python -m runner train` (runner/commands/train.py): the stack's pod is reached while the runner
still starts up, the checks that cost nothing run, then the session (runner/train/session.py).

For the stack's pod (no --host, no --local) the API read and the SSH connection start in the
background (runner/pod/early_link.py) before the rest of the runner is imported and the pre-launch
checks run, so the waiting on RunPod and on the pod's sshd overlaps that work instead of following it.
"""

from __future__ import annotations

import argparse
import signal
from typing import TYPE_CHECKING

from runner.settings import Settings

if TYPE_CHECKING:
    from runner.pod.early_link import EarlyLink
    from runner.stacklock import Lease
    from runner.train.options import TrainOptions


def _hang_up(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the terminal closed: detach as on Ctrl-C (training goes on, a watcher stays)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from runner.train.options import TrainOptions

    try:
        signal.signal(signal.SIGHUP, _hang_up)
    except ValueError:
        pass  # not the main thread (in-process tests)

    options = TrainOptions.from_args(args)  # below this line, nothing reads the argparse Namespace
    early = None
    if options.on_stack_pod:
        from runner.pod.early_link import EarlyLink

        early = EarlyLink.start(settings)
    try:
        return _checked_session(options, settings, early)
    finally:
        if early is not None:
            early.discard()


def _checked_session(options: TrainOptions, settings: Settings, early: EarlyLink | None) -> int:
    from runner.secret_settings import required
    from runner.train import prechecks
    from runner.train.console import Console
    from runner.train.recovery import AutoRecovery
    from runner.train.session import TrainSession
    from runner.train.targets import make_target
    from runner.train.train_config import load_train_config
    from runner.types import TargetKind

    target = make_target(options, settings, early=early)
    try:
        prechecks.check_workspace(options, target)
        cfg = load_train_config(options.config, settings.project_root)
        if early is not None:
            early.inputs_checked()  # the API read and the SSH connection may go on in the background now
        remote = prechecks.ask_remote_early(target)  # `git ls-remote` runs while the stack outputs are read
        target.preflight()  # pod: keys + stack outputs; never a billable call
        required(settings)  # every TRAIN_SECRETS name has a value
        prechecks.check_repo(options, settings, target, cfg, remote)
        seen = remote.result() if remote is not None else None
        if options.keep_pod and target.kind != TargetKind.POD:
            Console(settings.secrets()).say("--keep-pod only matters for the stack's pod; ignored")
        recovery = (
            AutoRecovery(options.max_recoveries, options.budget_usd, paths=settings.paths)
            if target.kind == TargetKind.POD
            else None
        )
        session = TrainSession(
            options, settings, target, cfg, recovery=recovery, remote_commit=seen.sha if seen else None
        )
        if target.kind != TargetKind.POD:
            return session.run()
        lease = _lead(settings, session.say)
        if lease is None:  # another runner leads this stack: follow only
            from runner.stacklock import StackLock
            from runner.train.follower import follow_leader

            return follow_leader(settings, StackLock.of(settings.paths).holder(), session.say)
        try:
            return session.run()
        finally:
            lease.release()
    finally:
        target.drop_spare()  # the connection kept between the launch, the follow and the end


def _lead(settings: Settings, say) -> Lease | Unlocked | None:
    """The stack's lock for this run (runner/stacklock.py); None when another runner holds it. A lock
    file that cannot be created (a read-only or full state directory) does not stop a run: it goes on
    unlocked, and says so."""
    from runner.stacklock import StackLock

    try:
        return StackLock.of(settings.paths).try_lead("train")
    except OSError as e:
        say(
            f"warning: cannot take the stack's lock {settings.paths.lock} ({e.strerror}); another runner on this stack would not be noticed"
        )
        return Unlocked()


class Unlocked:
    """Stands for a lease when the lock file could not be created."""

    def release(self) -> None:
        pass


__all__ = ["run"]
