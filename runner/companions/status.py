"""`runner status [--json]`: the pod, what it costs, the training run and the end of its log.

Read-only: never starts the pod, never spends money. Talks SSH only when the pod already runs;
otherwise the training part comes from the last run recorded on this machine (runs/*.json).
The JSON object's keys are stable (docs/guide/everyday.md, `runner status`, lists them).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime, timezone
from typing import Any, cast

from backends.runpod.models import Pod
from remote.podside.contract import RUN_ID_RE, IdleKey
from runner import billing, eventlog, termtext
from runner.companions import status_seen
from runner.companions.status_report import SCHEMA_VERSION, StatusReport
from runner.companions.status_text import render
from runner.errors import DamagedStateFile, RunnerError
from runner.output import as_invoked
from runner.pod.pod import StackPod, with_user
from runner.pod.stack_outputs import StackOutputs
from runner.pod.state import PodState
from runner.remote.pod_view import inspect_pod, tail_log
from runner.settings import Settings
from runner.timestamps import parse_utc
from runner.train import gpu_use, losscurve
from runner.train import run_record as runrecord
from runner.train.run_record import RunRecord

LOG_LINES = 10
EVENTS_SHOWN = 5  # the latest events of the run; `runner events` prints them all
LOSS_LOG_BYTES = 256 * 1024  # without a trainer_state.json, the loss comes from this much of the log's end
TRAINING_KEYS = (
    "run_id",
    "attempt",
    "state",
    "exit_code",
    "config",
    "output_dir",
    "started_at",
    "ended_at",
    "resume_from",
    "last_checkpoint",
    "message",
)


def _pod_info(pod: Pod | None, outputs: StackOutputs, state: str, now: datetime) -> dict[str, Any]:
    running = state == PodState.RUNNING
    market = (
        outputs.market if pod is None or pod.interruptible is None else ("spot" if pod.interruptible else "on-demand")
    )
    price = None
    if pod is not None and pod.cost_per_hr:
        price = pod.cost_per_hr
    elif outputs.cost_per_hr is not None:
        price = outputs.cost_per_hr
    elif outputs.bid_per_gpu is not None:
        price = round(outputs.bid_per_gpu * (outputs.gpu_count or 1), 4)
    started = parse_utc(pod.started_at) if pod is not None else None
    billing = pod is not None and state in (PodState.RUNNING, PodState.STARTING)
    return {
        "state": state,
        "status": pod.status if pod is not None else None,
        "last_status_change": pod.last_status_change if pod is not None else None,
        "market": market,
        "gpu_type": (pod.gpu_type if pod is not None and pod.gpu_type else outputs.gpu_type),
        "gpu_count": (pod.gpu_count if pod is not None and pod.gpu_count else outputs.gpu_count),
        "cost_per_hr": (price if billing else 0.0),
        "price_per_hr": price,
        "started_at": pod.started_at if pod is not None else None,
        "uptime_s": int((now - started).total_seconds()) if (running and started is not None) else None,
        "ssh": (
            {"host": pod.ssh.host, "port": pod.ssh.port, "user": pod.ssh.user or outputs.ssh_user}
            if running and pod is not None and pod.ssh is not None
            else None
        ),
        "data_center": (pod.data_center if pod is not None and pod.data_center else outputs.data_center),
        "volume_id": (pod.volume_id if pod is not None and pod.volume_id else outputs.volume_id),
        "name": pod.name if pod is not None else outputs.pod_name,
        "gpus": gpu_use.as_report(pod.gpu_use) if running and pod is not None else None,
        "idle_stop": {"after_min": outputs.idle_stop_after_min, "watching": None, "busy": None, "idle_for_s": None},
    }


def _empty_training() -> dict[str, Any]:
    return {
        "source": None,
        **{k: None for k in TRAINING_KEYS},
        "session_running": None,
        "newest_checkpoint": None,
        "skipped_checkpoints": [],
        "estimated_cost_usd": None,
        "record": None,
        "accounting": None,
        "loss": None,
        "billed": None,
        "note": None,
        "events": [],
    }


def _loss(points: list[losscurve.Point], source: str) -> dict[str, Any] | None:
    found = losscurve.summary(losscurve.thin(points))
    return {"source": source, **found} if found is not None else None


def _loss_on_pod(conn: Any, newest_checkpoint: str | None, log: str) -> dict[str, Any] | None:
    """From the newest complete checkpoint's trainer_state.json log_history, else from the log's end."""
    if newest_checkpoint:
        raw = conn.read_file(f"{newest_checkpoint.rstrip('/')}/trainer_state.json")
        state = None
        try:
            state = json.loads(raw) if raw else None
        except ValueError:
            pass
        points = losscurve.from_log_history(state.get("log_history") if isinstance(state, dict) else None)
        if points:
            return _loss(points, "trainer_state")
    res = conn.run(f"tail -c {LOSS_LOG_BYTES} -- {shlex.quote(log)} 2>/dev/null; true", timeout=60)
    curve = losscurve.LossCurve()
    for line in res.stdout.splitlines()[1:] if res.stdout else []:  # the first may be cut off
        curve.feed(line)
    return _loss(curve.points, "log")


def _accounting(record: RunRecord) -> dict[str, Any]:
    """Recovery accounting of a run recorded on this machine (runner/train/run_record.py, runner/train/accounting.py)."""
    return {
        "attempts": len(record.attempts),
        "preemptions": record.preemptions or 0,
        "recoveries": record.recoveries or 0,
        "steps_lost": record.steps_lost or 0,
        "seconds_lost": record.seconds_lost or 0.0,
        "pod_seconds": record.pod_seconds,
        "gpu_hours": record.gpu_hours,
        "estimated_cost_usd": record.estimated_cost_usd,
        "gpu_util": record.gpu_util,
        "gpu_memory": record.gpu_memory,
        "gpu_readings": record.gpu_readings,
        "per_attempt": [
            {
                "attempt": a.attempt,
                "pod_id": a.pod_id,
                "market": a.market,
                "state": a.state,
                "interruption": a.interruption,
                "recovery": a.recovery,
                "resume_from": a.resume_from,
                "last_step": a.last_step,
                "steps_lost": a.steps_lost,
                "seconds_lost": a.seconds_lost,
                "pod_seconds": a.pod_seconds,
                "cost_usd": a.cost_usd,
                "gpu_util": a.gpu_util,
                "gpu_readings": a.gpu_readings,
            }
            for a in record.attempts
        ],
    }


def _from_pod(settings: Settings, outputs: StackOutputs, pod: Pod, report: dict[str, Any]) -> None:
    paths = outputs.volume_paths
    settings.require_ssh_key()
    assert pod.ssh is not None  # the caller checked that the pod has an SSH endpoint
    ssh = with_user(pod.ssh, outputs.ssh_user)
    from runner.pod.link import connect_endpoint  # paramiko (~0.1 s): only once the pod is known to run

    with connect_endpoint(settings, ssh, pin_id=outputs.pod_id, started_at=pod.started_at, outputs=outputs) as conn:
        info = inspect_pod(conn, paths)
        report["pod"]["idle_stop"].update(_idle(info.idle))
        training = _empty_training()
        training.update({k: (info.state or {}).get(k) for k in TRAINING_KEYS})
        training.update(
            source="pod",
            session_running=info.session_running,
            output_dir=info.output_dir or training["output_dir"],
            newest_checkpoint=info.newest_checkpoint,
            skipped_checkpoints=info.skipped_checkpoints,
        )
        if info.state is None:
            training["source"] = "pod" if info.session_running else None
        report["training"] = training
        try:
            training["loss"] = _loss_on_pod(conn, info.newest_checkpoint, info.log or paths.log)
        except RunnerError as e:
            report["errors"].append(f"could not read the loss: {e.message}")
        run_id = training.get("run_id")
        if isinstance(run_id, str) and RUN_ID_RE.match(run_id):  # its events, kept here too (runner events)
            eventlog.keep_copies(
                settings.paths, run_id, eventlog.parse_lines(conn.read_file(paths.events_file(run_id)) or b"")
            )
        tail = tail_log(conn, info.log or paths.log, LOG_LINES)
        report["log"] = {
            "path": info.log or paths.log,
            "size": tail.end_offset if tail is not None else 0,
            "tail": [line.decode("utf-8", "replace") for line in tail.lines] if tail is not None else [],
        }


def _idle(data: dict[str, Any] | None) -> dict[str, Any]:
    """The running pod's watcher, from its idlewatch.json (IdleKey)."""
    if data is None or not data.get(IdleKey.ALIVE):
        return {"watching": False, "busy": None, "idle_for_s": None}
    busy = data.get(IdleKey.BUSY)
    return {
        "watching": True,
        "busy": list(busy) if isinstance(busy, list) else None,
        "idle_for_s": data.get(IdleKey.IDLE_FOR_S),
    }


def _last_local_run(settings: Settings, errors: list[str] | None = None) -> tuple[RunRecord, str] | None:
    """The newest run started from this machine for this stack (runner/train/run_record.py), if any; a
    damaged record is reported in `errors` (it names the file to delete) and read as none."""
    paths = settings.paths
    try:
        run_id = paths.last_run.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        record = runrecord.load(paths, run_id) if run_id else None
    except DamagedStateFile as e:
        if errors is not None and e.message not in errors:
            errors.append(e.message)
        return None
    return (record, str(paths.run_file(run_id))) if record is not None else None


def _from_local(settings: Settings, report: dict[str, Any]) -> None:
    found = _last_local_run(settings, report["errors"])
    if found is None:
        return
    record, where = found
    first = record.attempts[0] if record.attempts else None
    last = record.attempts[-1] if record.attempts else None
    training = _empty_training()
    training.update(
        source="local",
        record=where,
        run_id=record.run_id,
        state=record.status,
        exit_code=record.exit_code,
        config=record.config,
        output_dir=record.output_dir,
        last_checkpoint=record.last_checkpoint,
        newest_checkpoint=record.last_checkpoint,
        attempt=last.attempt if last else None,
        started_at=(first.started_at if first and first.started_at else record.created_at),
        ended_at=last.ended_at if last else None,
        resume_from=last.resume_from if last else None,
        estimated_cost_usd=record.estimated_cost_usd,
        loss=_loss([(int(p[0]), float(p[1])) for p in record.loss_points if len(p) == 2], "record"),
    )
    training["note"] = status_seen.note_for_local(training)
    report["training"] = training


def collect(settings: Settings, *, now: datetime | None = None) -> StatusReport:
    """Everything `status` shows, as the JSON object `--json` prints."""
    settings.require_api_key()
    stack_pod = StackPod.of(settings)
    outputs = stack_pod.outputs
    seen = stack_pod.look()
    pod, state = seen.pod, seen.state
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "stack": outputs.stack,
        "pod_id": outputs.pod_id,
        "pod": _pod_info(pod, outputs, state, now or datetime.now(timezone.utc)),
        "training": _empty_training(),
        "log": None,
        "errors": [],
    }
    if state == PodState.RUNNING and pod is not None and pod.ssh is not None:
        try:
            _from_pod(settings, outputs, pod, report)
        except RunnerError as e:
            report["errors"].append(f"could not read the training state over SSH: {e.message}")
    if report["training"]["source"] is None and state != PodState.RUNNING:
        from runner.volume.views import fill_status  # the run's state through S3 (no pod)

        fill_status(settings, outputs, report, _empty_training(), TRAINING_KEYS, LOG_LINES)
    if report["training"]["source"] is None:
        _from_local(settings, report)
    else:
        status_seen.remember(settings, report["training"])
    run_id = report["training"]["run_id"]
    if isinstance(run_id, str) and RUN_ID_RE.match(run_id):
        report["training"]["events"] = eventlog.merge(eventlog.read_local(settings.paths, run_id))[-EVENTS_SHOWN:]
    found = _last_local_run(settings, report["errors"])
    ours = found is not None and found[0].run_id == report["training"]["run_id"]
    report["training"]["billed"] = _billed(stack_pod, report["training"], found[0] if found and ours else None)
    if found is not None and ours:
        # Only when this machine recorded the run; otherwise the key stays null.
        report["training"]["accounting"] = _accounting(found[0])
        if report["training"]["loss"] is None:
            report["training"]["loss"] = _loss(
                [(int(p[0]), float(p[1])) for p in found[0].loss_points if len(p) == 2], "record"
            )
    return cast(StatusReport, report)


def _billed(stack_pod: StackPod, training: dict[str, Any], record: RunRecord | None) -> dict[str, Any] | None:
    """What RunPod billed for the run's pods since the hour it started (runner/billing.py); null when no
    run is known or the billing endpoint did not answer."""
    if training["run_id"] is None:
        return None
    if record is not None:
        first = record.attempts[0].started_at if record.attempts else None
        pods, since = [a.pod_id for a in record.attempts] + [record.pod_id], first or record.created_at
    else:
        pods, since = [stack_pod.pod_id], training["started_at"]
    found = billing.ask(stack_pod.client, pods, since)
    return {"usd": found.usd, "since": found.since, "pods": list(found.pods)} if found else None


def _as_shown(report: StatusReport) -> Any:
    """The log tail as a terminal shows it: each line from its last carriage return (a progress bar)."""
    log = report["log"]
    if log is None:
        return report
    return {**report, "log": {**log, "tail": [line.rsplit("\r", 1)[-1] for line in log["tail"]]}}


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.pod:  # several pods and none named: every pod in one table (runner/companions/status_pods.py)
        from runner.errors import StackError
        from runner.pod.stack import read_outputs_for

        try:
            outputs = read_outputs_for(settings)
        except StackError:
            outputs = None
        if outputs is not None and outputs.pods:
            from runner.companions.status_pods import show

            print(show(settings, outputs, bool(getattr(args, "json", False))))
            return 0
    report = collect(settings)
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2, sort_keys=False))
    else:
        shown = report
        if termtext.guarded(sys.stdout):  # every value may come from the pod: no control sequence on a terminal
            shown = termtext.clean_values(_as_shown(report))
        print(as_invoked(render(shown)))
    sys.stdout.flush()
    return 0
