"""The `runner status --json` object: the keys users script against, as TypedDicts (README:
"runner status"). runner/companions/status.py fills it, status_text.py prints it."""
from __future__ import annotations

from typing import Any, Optional, TypedDict


# The keys users script against, in the order printed (README: "runner status"). Optional
# (a functional-syntax TypedDict, since 3.10 has no NotRequired) spells "null when unknown".
class SshReport(TypedDict):
    host: str
    port: int
    user: str


class IdleReport(TypedDict):
    after_min: float                 # the stack's idle stop, minutes (0: off)
    watching: Optional[bool]         # the pod's watcher runs; null while the pod is not running
    busy: Optional[list[str]]        # what keeps the pod busy now ([]: idle); null when not known
    idle_for_s: Optional[float]      # how long it has been idle, as of the watcher's last check


class PodReport(TypedDict):
    state: str                       # PodState
    status: Optional[str]            # RunPod's status (RUNNING, EXITED, ...)
    last_status_change: Optional[str]
    market: Optional[str]            # spot | on-demand
    gpu_type: Optional[str]
    gpu_count: Optional[int]
    cost_per_hr: Optional[float]     # what it bills now (0.0 when stopped)
    price_per_hr: Optional[float]    # what it bills while running
    started_at: Optional[str]
    uptime_s: Optional[int]
    ssh: Optional[SshReport]
    data_center: Optional[str]
    volume_id: Optional[str]
    name: Optional[str]
    idle_stop: IdleReport


class LossReport(TypedDict):
    source: str                      # trainer_state (the newest complete checkpoint's log_history) | log | record
    first_step: int
    last_step: int
    min: float
    min_step: int
    last: float
    points: list[list[float]]        # [[step, loss], ...], at most losscurve.MAX_POINTS


class TrainingReport(TypedDict):
    source: Optional[str]            # pod (over SSH) | volume (S3, pod stopped) | local (this machine's record) | null
    run_id: Optional[str]
    attempt: Optional[int]
    state: Optional[str]
    exit_code: Optional[int]
    config: Optional[str]
    output_dir: Optional[str]
    started_at: Optional[str]
    ended_at: Optional[str]
    resume_from: Optional[str]
    last_checkpoint: Optional[str]
    session_running: Optional[bool]
    newest_checkpoint: Optional[str]
    skipped_checkpoints: list[str]
    estimated_cost_usd: Optional[float]
    record: Optional[str]            # the local run record's path
    accounting: Optional[dict[str, Any]]
    loss: Optional[LossReport]       # the run's loss over steps (the chart); null when none is known


class LogReport(TypedDict):
    path: str
    size: int
    tail: list[str]


class StatusReport(TypedDict):
    stack: str
    pod_id: str
    pod: PodReport
    training: TrainingReport
    log: Optional[LogReport]
    errors: list[str]


__all__ = ["IdleReport", "LogReport", "LossReport", "PodReport", "SshReport", "StatusReport", "TrainingReport"]
