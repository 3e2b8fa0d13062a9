"""The `runner status --json` object: the keys users script against, as TypedDicts (docs/guide/everyday.md:
"runner status"). runner/companions/status.py fills it, status_text.py prints it."""

from __future__ import annotations

from typing import Any, TypedDict


# The keys users script against, in the order printed (docs/guide/everyday.md, `runner status`). Optional
# (a functional-syntax TypedDict, since 3.10 has no NotRequired) spells "null when unknown".
class SshReport(TypedDict):
    host: str
    port: int
    user: str


class IdleReport(TypedDict):
    after_min: float  # the stack's idle stop, minutes (0: off)
    watching: bool | None  # the pod's watcher runs; null while the pod is not running
    busy: list[str] | None  # what keeps the pod busy now ([]: idle); null when not known
    idle_for_s: float | None  # how long it has been idle, as of the watcher's last check


class GpuReport(TypedDict):
    util: int | None  # percent, as RunPod's API reports it now (runtime.gpus[].util)
    memory_util: int | None  # percent of the GPU's memory in use


class BilledReport(TypedDict):
    usd: float  # what RunPod billed for the run's pods (GET /v2/billing/pods), from `since` on
    since: str  # the start of the first hourly bucket counted (the hour the run started), RFC 3339
    pods: list[str]


class PodReport(TypedDict):
    state: str  # PodState
    status: str | None  # RunPod's status (RUNNING, EXITED, ...)
    last_status_change: str | None
    market: str | None  # spot | on-demand
    gpu_type: str | None
    gpu_count: int | None
    cost_per_hr: float | None  # what it bills now (0.0 when stopped)
    price_per_hr: float | None  # what it bills while running
    started_at: str | None
    uptime_s: int | None
    ssh: SshReport | None
    data_center: str | None
    volume_id: str | None
    name: str | None
    gpus: list[GpuReport] | None  # per GPU while it runs; null when not running or RunPod did not report it
    idle_stop: IdleReport


class LossReport(TypedDict):
    source: str  # trainer_state (the newest complete checkpoint's log_history) | log | record
    first_step: int
    last_step: int
    min: float
    min_step: int
    last: float
    points: list[list[float]]  # [[step, loss], ...], at most losscurve.MAX_POINTS


class TrainingReport(TypedDict):
    source: str | None  # pod (over SSH) | volume (S3, pod stopped) | local (this machine's record) | null
    run_id: str | None
    attempt: int | None
    state: str | None
    exit_code: int | None
    config: str | None
    output_dir: str | None
    started_at: str | None
    ended_at: str | None
    resume_from: str | None
    last_checkpoint: str | None
    message: str | None  # the pod side's note on the attempt's end, e.g. that the pod could not stop itself
    session_running: bool | None
    newest_checkpoint: str | None
    skipped_checkpoints: list[str]
    estimated_cost_usd: float | None
    record: str | None  # the local run record's path
    accounting: dict[str, Any] | None
    loss: LossReport | None  # the run's loss over steps (the chart); null when none is known
    billed: BilledReport | None  # RunPod's billed amount beside the estimate; null: no run, or no answer
    note: str | None  # e.g. that the result of a run known only locally is not known yet
    events: list[dict[str, Any]]  # the run's latest events (runner/eventlog.py; `runner events` has them all)


class LogReport(TypedDict):
    path: str
    size: int
    tail: list[str]


# Raised when a key changes meaning or goes away (new keys do not raise it): scripts can check it.
SCHEMA_VERSION = 1


class StatusReport(TypedDict):
    schema_version: int
    stack: str
    pod_id: str
    pod: PodReport
    training: TrainingReport
    log: LogReport | None
    errors: list[str]


__all__ = [
    "SCHEMA_VERSION",
    "BilledReport",
    "GpuReport",
    "IdleReport",
    "LogReport",
    "LossReport",
    "PodReport",
    "SshReport",
    "StatusReport",
    "TrainingReport",
]
