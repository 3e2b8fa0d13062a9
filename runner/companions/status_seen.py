"""`runner status` never contradicts itself: a run's result, once read from the pod or through the S3
API, is written into this machine's record of the run, so a later `status` that can read neither (the
pod stopped itself after a detached run, no S3 key) shows that result instead of the record's older
"detached"; and when the record has no result, status says the result is not known yet."""

from __future__ import annotations

from typing import Any

from runner.settings import Settings
from runner.train import run_record as runrecord

# The pod's states (state.json) that end a run. Not "preempted": such a run is unfinished, and the watcher
# and the pod's own start go on recovering it (runner/watcher/runs.py reads the record's status).
ENDED = ("succeeded", "failed", "stalled", "stopped")
PENDING = ("launching", "running", "detached", "unknown")  # a record written before the end was seen
UNKNOWN_RESULT = (
    "result not known yet: the run ended or is still going on the pod, which cannot be read now; "
    "`runner status` shows the result once the pod runs or RunPod's S3 API can read the volume "
    "(RUNPOD_S3_ACCESS_KEY/RUNPOD_S3_SECRET_KEY)"
)


def remember(settings: Settings, training: dict[str, Any]) -> None:
    """Record an ended run's state, exit code and checkpoint as the pod or the volume showed them."""
    if training.get("source") not in ("pod", "volume") or training.get("state") not in ENDED:
        return
    run_id = training.get("run_id")
    record = runrecord.load(settings.paths, run_id) if run_id else None
    if record is None:
        return
    seen = {
        "status": training["state"],
        "exit_code": training.get("exit_code"),
        "last_checkpoint": training.get("last_checkpoint") or record.last_checkpoint,
    }
    if all(getattr(record, key) == value for key, value in seen.items()):
        return
    for key, value in seen.items():
        setattr(record, key, value)
    attempt = record.attempt(training["attempt"]) if training.get("attempt") else None
    if attempt is not None:
        attempt.state, attempt.exit_code = training["state"], training.get("exit_code")
        attempt.ended_at = training.get("ended_at") or attempt.ended_at
        attempt.last_checkpoint = seen["last_checkpoint"]
    runrecord.save(settings.paths, record)


def note_for_local(training: dict[str, Any]) -> str | None:
    """What to say about a run known only from this machine's record."""
    return UNKNOWN_RESULT if training.get("state") in PENDING else None
