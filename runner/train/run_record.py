"""What the runner knows about a run, kept on this machine (for `runner status` and recovery accounting).

One JSON file per run: <state dir>/<stack>/runs/<run_id>.json (written atomically, mode 0600),
plus <state dir>/<stack>/last_run holding the newest run's id. Runs on `--host` and `--local`
targets are recorded under the pseudo-stacks `host-<host>-<port>` and `local`, so they never look
like the stack pod's run.

Record fields (all JSON): run_id, stack, target ("pod"|"host"|"local"), target_name, pod_id,
config, output_dir, workspace, log, state_file, status ("launching"|"running"|"detached"|
"succeeded"|"failed"|"preempted"|"interrupted"|"unknown"), exit_code, last_checkpoint,
keep_pod, cost_per_hr, pod_seconds, estimated_cost_usd, pod_stop (how the pod was stopped),
created_at, updated_at, attempts: [{attempt, log_offset, resume_from, started_at, ended_at,
state, exit_code, last_checkpoint, status}] (status: "started"|"already-running").

Recovery accounting (runner/train/accounting.py; totals over every command run on this run id):
preemptions (attempts ended by an outbid or a vanished pod), recoveries (automatic ones),
steps_lost / seconds_lost (work after the checkpoint a resume went back to), gpu_count, gpu_hours
(pod_seconds x gpu_count); pod_seconds and estimated_cost_usd are totals too. gpu_util / gpu_memory /
gpu_readings: the GPUs' mean utilization and memory use over the API's reads while following
(runner/train/gpu_use.py). billed_usd / billed_since / billed_pods: what RunPod's billing reported for
the run's pods from the hour the run started (null when it did not answer; the estimate stays). Per attempt:
pod_id, market, cost_per_hr, pod_seconds / cost_usd (pod time since the previous attempt ended,
so a recovery's boot counts for the attempt it brought up), interruption (preempted | gone |
killed | stopped_by_user | stopped_by_runpod | budget), gpu_util / gpu_memory / gpu_readings /
gpu_unreported (its API reads), detected_at, last_step (highest training
step seen in its log), steps_lost, seconds_lost, recovery (how its pod came back: resumed |
running | recreated) and recovery_s (from noticing the interruption to this attempt's launch).

pod: the pod's name when the stack has several (runner/pod/choice.py).

max_recoveries, budget_usd, wait_for_capacity_s: the run's limits as `runner train` set them (a watcher recovers
within them).

loss_points: [[step, loss], ...] as the log showed them, over all attempts (runner/train/losscurve.py;
at most MAX_POINTS, evenly thinned), for the summary's and `runner status`'s loss chart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import DamagedStateFile
from runner.paths import StatePaths, write_private
from runner.timestamps import utc_now


@dataclass
class AttemptRecord:
    attempt: int
    log_offset: int
    resume_from: str | None = None
    status: str = "started"  # launcher answer: started | already-running
    started_at: str | None = None
    ended_at: str | None = None
    state: str | None = None  # setup | running | succeeded | failed | preempted
    exit_code: int | None = None
    last_checkpoint: str | None = None
    pod_id: str | None = None
    market: str | None = None  # spot | on-demand
    cost_per_hr: float | None = None
    pod_seconds: float | None = None
    cost_usd: float | None = None
    interruption: str | None = None
    detected_at: str | None = None
    last_step: int | None = None
    steps_lost: int | None = None
    seconds_lost: float | None = None
    recovery: str | None = None  # resumed | running | recreated
    recovery_s: float | None = None
    gpu_util: float | None = None  # mean GPU utilization over the attempt's API reads, percent
    gpu_memory: float | None = None  # mean GPU memory in use, percent
    gpu_readings: int | None = None  # reads that reported utilization (gpu_unreported: that did not)
    gpu_unreported: int | None = None


@dataclass
class RunRecord:
    run_id: str
    stack: str
    target: str
    target_name: str
    config: str
    output_dir: str | None = None
    workspace: str | None = None
    log: str | None = None
    state_file: str | None = None
    pod_id: str | None = None
    status: str = "launching"
    exit_code: int | None = None
    last_checkpoint: str | None = None
    keep_pod: bool = False
    cost_per_hr: float | None = None
    pod_seconds: float | None = None
    estimated_cost_usd: float | None = None
    pod_stop: str | None = None
    preemptions: int = 0
    recoveries: int = 0
    steps_lost: int = 0
    seconds_lost: float = 0.0
    gpu_count: int | None = None
    gpu_hours: float | None = None
    gpu_util: float | None = None  # over every attempt's readings (runner/train/gpu_use.py)
    gpu_memory: float | None = None
    gpu_readings: int = 0
    # What RunPod billed for the run's pods (GET /v2/billing/pods), asked when the run ended; None: no answer.
    billed_usd: float | None = None
    billed_since: str | None = None  # the start of the first hourly bucket counted
    billed_pods: list[str] = field(default_factory=list)
    # The run's limits, kept with it so a watcher recovers it as `runner train` would (runner/watcher/).
    max_recoveries: int | None = None
    budget_usd: float | None = None
    wait_for_capacity_s: float | None = None
    pod: str | None = None  # the pod's name in a stack of several (runner/pod/choice.py); None: the only pod
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    attempts: list[AttemptRecord] = field(default_factory=list)
    loss_points: list[list[float]] = field(default_factory=list)

    def attempt(self, number: int) -> AttemptRecord | None:
        return next((a for a in self.attempts if a.attempt == number), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """The record a file holds; TypeError or ValueError when it is not one (a damaged file)."""
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in data.items() if k in known}
        for name in ("run_id", "stack", "target", "target_name", "config"):
            if not isinstance(kw.get(name), str):
                raise TypeError(f"{name} is not a string")
        attempts, points = data.get("attempts") or [], data.get("loss_points") or []
        if not isinstance(attempts, list) or not isinstance(points, list):
            raise TypeError("attempts and loss_points must be lists")
        kw["attempts"] = [
            AttemptRecord(**{k: v for k, v in a.items() if k in AttemptRecord.__dataclass_fields__})
            for a in attempts
            if isinstance(a, dict)
        ]
        kw["loss_points"] = [
            [int(p[0]), float(p[1])] for p in points if isinstance(p, list) and len(p) == 2
        ]  # ValueError/TypeError on anything else
        return cls(**kw)


def record_paths(state_dir: Path, stack: str, target: str, target_name: str) -> StatePaths:
    """Where records of this target's runs go (see module docstring)."""
    if target == "pod":
        return StatePaths(state_dir, stack)
    if target == "local":
        return StatePaths(state_dir, "local")
    return StatePaths(state_dir, "host-" + target_name.replace(":", "-").replace("@", "-"))


def save(paths: StatePaths, record: RunRecord) -> Path:
    """Write the record atomically and mark it as the last run."""
    paths.ensure()
    record.updated_at = utc_now()
    path = paths.run_file(record.run_id)
    write_private(path, json.dumps(record.to_json(), indent=2) + "\n")
    write_private(paths.last_run, record.run_id + "\n")
    return path


def load(paths: StatePaths, run_id: str) -> RunRecord | None:
    """The run's record, None when this machine has none; DamagedStateFile (which names the file to
    delete) when the file holds something else."""
    path = paths.run_file(run_id)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return RunRecord.from_json(data)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DamagedStateFile(path, e.strerror or "unreadable", _LOST) from None
    except (ValueError, TypeError) as e:
        raise DamagedStateFile(path, str(e) if isinstance(e, TypeError) else "not JSON", _LOST) from None


_LOST = "it only holds this machine's account of the run (attempts, cost, the loss chart); the run on the pod is not affected"


def all_records(paths: StatePaths) -> list[RunRecord]:
    """Every run this machine recorded on the stack, newest first; damaged files are skipped."""
    found: list[RunRecord] = []
    for path in sorted(paths.runs_dir.glob("*.json")) if paths.runs_dir.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                found.append(RunRecord.from_json(data))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(found, key=lambda r: r.updated_at, reverse=True)
