"""`runner status` as text: the report (runner/companions/status_report.py) in a few lines."""

from __future__ import annotations

from typing import Any, cast

from runner import billing
from runner.companions.status_report import BilledReport, IdleReport, StatusReport
from runner.output import plural
from runner.pod.state import PodState
from runner.train import gpu_use, losscurve


def _duration(seconds: int) -> str:
    h, rest = divmod(max(0, seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


_STATE_TEXT: dict[str, str] = {
    PodState.RUNNING: "running",
    PodState.STARTING: "starting",
    PodState.PREEMPTED: "preempted (outbid; stopped)",
    PodState.STOPPED_BY_USER: "stopped",
    PodState.STOPPED_BY_RUNPOD: "stopped by RunPod",
    PodState.GONE: "gone (terminated)",
}


def _idle_text(idle: IdleReport, running: bool) -> str:
    if not idle["after_min"]:
        return "off (idleStopMinutes 0): a running pod bills until `python -m runner stop`"
    after = f"after {idle['after_min']:g} min with no training, SSH session or tunnel"
    if not running:
        return after
    if not idle["watching"]:
        return f"{after}, but no watcher runs on the pod now (`runner train` starts one)"
    if idle["busy"]:
        return f"{after}; busy now: {'; '.join(idle['busy'])}"
    return f"{after}; idle for {_duration(int(idle['idle_for_s'] or 0))} now"


def _billed_text(billed: BilledReport | None) -> str:
    if billed is None:
        return "not reported by RunPod's billing (the cost above is the estimate alone)"
    return billing.text(billing.Billed(billed["usd"], billed["since"], tuple(billed["pods"])))


def render(report: StatusReport) -> str:
    pod, tr, log = report["pod"], report["training"], report["log"]
    lines = [f"stack {report['stack']}, pod {report['pod_id']}" + (f" ({pod['name']})" if pod.get("name") else "")]
    raw = (
        f" ({pod['status']}" + (f": {pod['last_status_change']}" if pod["last_status_change"] else "") + ")"
        if pod["status"]
        else ""
    )
    since = ""
    if pod["uptime_s"] is not None:
        since = f", up {_duration(pod['uptime_s'])} since {pod['started_at']}"
    lines.append(f"  pod:        {_STATE_TEXT.get(pod['state'], pod['state'])}{raw}{since}")
    gpu = f"{pod['gpu_count']} x {pod['gpu_type'] or 'GPU'}, {pod['market']}"
    if pod["state"] == PodState.GONE:
        lines.append(f"  GPU:        {gpu}; `pulumi up` recreates the pod (the volume keeps your data)")
    elif pod["cost_per_hr"]:
        lines.append(f"  GPU:        {gpu}, ${pod['cost_per_hr']:.3f}/hour now")
    else:
        when = f" (${pod['price_per_hr']:.3f}/hour when running)" if pod["price_per_hr"] else ""
        lines.append(f"  GPU:        {gpu}; no compute charge while stopped{when}")
    if pod["state"] == PodState.RUNNING:
        lines.append(f"  GPU use:    {gpu_use.now_text(cast(Any, pod['gpus']))}")
    if pod["ssh"]:
        s = pod["ssh"]
        lines.append(f"  SSH:        {s['user']}@{s['host']} -p {s['port']}   (`python -m runner ssh`)")
    lines.append(f"  idle stop:  {_idle_text(pod['idle_stop'], pod['state'] == PodState.RUNNING)}")
    if tr["source"] is None:
        lines.append(
            "training:     no run known"
            + (
                ""
                if pod["state"] == PodState.RUNNING
                else " (the pod is not running; nothing recorded on this machine)"
            )
        )
    else:
        where = {"pod": "from the pod", "volume": "from the volume through S3; the pod is stopped"}.get(
            tr["source"] or "", "last run started from this machine"
        )
        lines.append(f"training ({where}):")
        if tr["run_id"]:
            attempt = f", attempt {tr['attempt']}" if tr["attempt"] else ""
            lines.append(
                f"  run:        {tr['run_id']}{attempt}, {tr['state'] or 'unknown state'}"
                + (f", exit code {tr['exit_code']}" if tr["exit_code"] is not None else "")
            )
        if tr.get("note"):
            lines.append(f"  result:     {tr['note']}")
        if tr["config"]:
            lines.append(f"  config:     {tr['config']}")
        if tr["session_running"] is not None:
            lines.append(f"  tmux:       {'running' if tr['session_running'] else 'not running'}")
        lines.append(f"  checkpoint: {tr['newest_checkpoint'] or 'none yet'}")
        if tr["skipped_checkpoints"]:
            lines.append(f"  incomplete: {', '.join(tr['skipped_checkpoints'])}")
        if tr["ended_at"]:
            lines.append(f"  ended:      {tr['ended_at']}")
        if tr.get("message"):
            lines.append(f"  note:       {tr['message']}")
        if tr["estimated_cost_usd"] is not None:
            lines.append(f"  cost:       about ${tr['estimated_cost_usd']:.2f} (compute, estimated)")
        lines.append(f"  billed:     {_billed_text(tr['billed'])}")
        acc = tr.get("accounting")
        if acc:
            lines.append(
                f"  attempts:   {acc['attempts']} ({plural(acc['preemptions'], 'preemption')}, "
                f"{plural(acc['recoveries'], 'automatic recovery', 'automatic recoveries')})"
            )
            if acc["steps_lost"] or acc["seconds_lost"]:
                lines.append(
                    f"  lost:       {plural(acc['steps_lost'], 'step')}, {_duration(int(acc['seconds_lost']))} "
                    "redone after resumes"
                )
            if acc.get("gpu_readings"):
                lines.append(
                    f"  GPU mean:   {acc['gpu_util']:.0f}% utilization over {plural(acc['gpu_readings'], 'API reading')}"
                    + (f"; {gpu_use.LOW_HINT}" if acc["gpu_util"] < gpu_use.LOW_UTIL else "")
                )
            if acc["gpu_hours"] is not None:
                cost = (
                    f", about ${acc['estimated_cost_usd']:.2f}"
                    if acc["estimated_cost_usd"] is not None and tr["estimated_cost_usd"] is None
                    else ""
                )
                lines.append(f"  GPU time:   {acc['gpu_hours']:.3f} GPU-hours{cost} (all attempts)")
        events = tr.get("events") or []
        if events:
            lines.append("  events:     " + f"(latest {len(events)}; `python -m runner events` has them all)")
            lines += [
                f"    {e.get('time')}  {e.get('event')}" + (f", attempt {e['attempt']}" if e.get("attempt") else "")
                for e in events
            ]
        loss = tr.get("loss")
        if loss:
            chart = losscurve.chart([(int(p[0]), float(p[1])) for p in loss["points"]])
            lines += [f"  {row}" for row in chart]
    if log is not None:
        lines.append(
            f"log ({log['path']}, last {len(log['tail'])} lines):"
            if log["tail"]
            else f"log ({log['path']}): empty or not written yet"
        )
        lines += [f"  {line}" for line in log["tail"]]
    for err in report["errors"]:
        lines.append(f"warning: {err}")
    return "\n".join(lines)


__all__ = ["render"]
