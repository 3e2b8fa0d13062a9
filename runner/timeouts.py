"""The runner's waits and deadlines, in one object (seconds), read at the moment of use.

    from runner import timeouts
    timeouts.current().ack_wait_s
Tests shorten them by replacing ACTIVE for one test (tests/fixtures/train_harness.py shorten_timeouts).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timeouts:
    # runner train: launching and following an attempt
    launch_s: float = 900.0  # the launcher clones the repo: can take a while on a first run
    ack_wait_s: float = 30.0  # RT_ACK_WAIT of attached runs: the pod waits this long for our ack
    stop_verify_s: float = 90.0  # how long the pod gets to stop itself before the runner stops it
    end_grace_s: float = 2.0  # after the state file says "ended", wait this long for the footer
    max_reconnect_wait_s: float = 600.0  # SSH drops: how long to keep reconnecting
    stop_check_interval_s: float = 0.5  # how often the follower checks whether to stop
    state_check_timeout_s: float = 15.0  # one read of the state file
    state_poll_s: float = 15.0  # safety net: the end is normally seen in the log itself
    host_banner_s: float = 30.0  # --host: how long to wait for the machine's SSH banner
    # runner train: automatic recovery
    pod_poll_s: float = 5.0  # PodWatch: one API read this often while following
    confirm_s: float = 20.0  # after a "preempted" footer: how long the API may take to say who stopped the pod
    confirm_poll_s: float = 0.5
    # --wait-for-capacity: the pause after the first "no GPU", growing 1.5x a round up to the cap
    capacity_first_pause_s: float = 30.0
    capacity_max_pause_s: float = 300.0
    # runner tensorboard
    tensorboard_start_s: float = 120.0
    tensorboard_reconnect_s: float = 300.0


ACTIVE = Timeouts()


def current() -> Timeouts:
    return ACTIVE


__all__ = ["ACTIVE", "Timeouts", "current"]
