"""The lines `runner train` prints about a run: attempt boundaries, the summary, the accounting."""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import NamedTuple

from runner import billing
from runner.output import duration, plural
from runner.settings import Settings
from runner.train import gpu_use, losscurve
from runner.train.endwatch import LOST
from runner.train.events import Ended, Launched
from runner.train.run_record import RunRecord
from runner.train.targets import StopReport, Target
from runner.types import Say, TargetKind


def stack_flag(settings: Settings) -> str:
    """` --stack <name>` (shell-quoted) for the commands printed, when the stack was given on the command line."""
    if settings.sources.get("PULUMI_STACK") != "command line":
        return ""
    return f" --stack {shlex.quote(settings.stack)}"


def iso_seconds(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return max(0.0, (b - a).total_seconds())


class Price(NamedTuple):
    """Pod time of this command at one market and price (runner/train/accounting.py BillingLedger)."""

    market: str | None
    rate_per_hr: float | None
    seconds: float
    dollars: float


def cost_text(r: RunRecord, target: Target, prices: list[Price] | None) -> str:
    """`about $X ($0.350/h x 2h 06m of pod time for this run)`; split per market and price when the
    run moved (spot -> on-demand) or the price changed."""
    spent = r.estimated_cost_usd
    if spent is None:
        return "unknown (no cost_per_hr)"
    if prices and len(prices) > 1:
        parts = [
            f"{p.market or 'pod'} ${p.rate_per_hr or 0:.3f}/h x {duration(p.seconds)} = ${p.dollars:.4f}"
            for p in prices
        ]
        return f"about ${spent:.4f} for this run ({'; '.join(parts)})"
    rate = prices[0].rate_per_hr if prices else target.cost_per_hr
    return f"about ${spent:.4f} (${rate or 0:.3f}/h x {duration(r.pod_seconds)} of pod time for this run)"


def rows_out(say: Say, rows: list[tuple[str, str]]) -> None:
    for name, value in rows:
        say(f"  {name + ':':<12} {value}")


def announce_line(target: Target, launched: Launched, market: str | None) -> str:
    """One boundary line per attempt, e.g. `── attempt 3 on pod X (spot, $0.340/h), resumed from checkpoint-120 ──`."""
    where = target.label
    if target.kind == TargetKind.POD:
        price = f", ${target.cost_per_hr:.3f}/h" if target.cost_per_hr else ""
        where = f"pod {target.pod_id} ({market}{price})"
    if launched.attached:
        how = "already running, attached"
    elif launched.resume_from:
        how = f"resumed from {launched.resume_from.rstrip('/').rsplit('/', 1)[-1]}"
    else:
        how = "from scratch"
    return f"── attempt {launched.attempt} on {where}, {how} ──"


def accounting_rows(r: RunRecord, target: Target) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    n = len(r.attempts)
    if n > 1 or r.preemptions:
        rows.append(
            (
                "attempts",
                f"{n} ({plural(r.preemptions or 0, 'preemption')}, "
                f"{plural(r.recoveries or 0, 'automatic recovery', 'automatic recoveries')})",
            )
        )
    if r.steps_lost or r.seconds_lost:
        rows.append(
            (
                "lost",
                f"{plural(r.steps_lost or 0, 'step')}, {duration(r.seconds_lost)} of training redone "
                "after resumes (work since the last checkpoint)",
            )
        )
    rows += gpu_rows(r, target)
    if target.kind == TargetKind.POD and r.gpu_hours is not None:
        rows.append(
            (
                "GPU time",
                f"{r.gpu_hours:.4f} GPU-hours ({duration(r.pod_seconds)} of pod time x {plural(r.gpu_count or 1, 'GPU')})",
            )
        )
    return rows


def gpu_rows(r: RunRecord, target: Target) -> list[tuple[str, str]]:
    """The GPUs' mean utilization over the API's reads while following, and per attempt when several."""
    seen = [a for a in r.attempts if a.gpu_readings or a.gpu_unreported]
    if target.kind != TargetKind.POD or not seen:
        return []
    unreported = sum(a.gpu_unreported or 0 for a in r.attempts)
    rows = [("GPU use", gpu_use.mean_text(gpu_use.GpuMean(r.gpu_util, r.gpu_memory, r.gpu_readings, unreported)))]
    if len(seen) > 1:
        means = [(a.attempt, gpu_use.GpuMean(a.gpu_util, a.gpu_memory, a.gpu_readings or 0, 0)) for a in seen]
        rows.append(("by attempt", gpu_use.per_attempt_text(means)))
    return rows


def cost_rows(r: RunRecord, target: Target, prices: list[Price] | None) -> list[tuple[str, str]]:
    """The estimate, and RunPod's billed amount next to it (runner/billing.py)."""
    found = (
        billing.Billed(r.billed_usd, r.billed_since, tuple(r.billed_pods))
        if r.billed_usd is not None and r.billed_since
        else None
    )
    estimate = cost_text(r, target, prices)
    return [("cost", estimate if found else f"{estimate}, an estimate"), ("billed", billing.text(found))]


def print_accounting(say: Say, r: RunRecord, target: Target, prices: list[Price] | None = None) -> None:
    rows = accounting_rows(r, target)
    if target.kind == TargetKind.POD and r.estimated_cost_usd is not None:
        rows += cost_rows(r, target, prices)
    rows_out(say, rows)


def summary(
    say: Say,
    r: RunRecord,
    target: Target,
    launched: Launched,
    ended: Ended,
    code: int,
    stop: StopReport,
    *,
    took: float | None,
    stack_flag: str,
    prices: list[Price] | None = None,
    loss: list[losscurve.Point] | None = None,
    advice: str | None = None,
) -> None:
    verdict = {
        "succeeded": "training succeeded",
        "failed": "training FAILED",
        LOST: "training ended without recording how: its supervisor on the pod is gone (a full volume? "
        "the log's last lines say more)",
    }.get(ended.state, f"training ended ({ended.state})")
    say(f"{verdict}: exit code {code}")
    rows = [
        ("run", f"{launched.run_id} (attempt {launched.attempt}) on {target.label}"),
        ("trained", f"{duration(took)} (attempt {launched.attempt}, from its start to its end)"),
        ("checkpoint", ended.checkpoint or "none saved"),
    ]
    rows += accounting_rows(r, target)
    if target.kind == TargetKind.POD:
        rows += cost_rows(r, target, prices)
        rows.append(("pod", stop.text))
    rows.append(("log", launched.log))
    if advice:
        rows.append(("checkpoints", advice))
    rows_out(say, rows)
    for line in losscurve.chart(loss or []):
        say(f"  {line}")
    if not stop.ok:
        say(f"WARNING: pod {target.pod_id} may still be running and billing: `python -m runner stop{stack_flag}`")


def detached_lines(
    say: Say, target: Target, launched: Launched, *, by_request: bool, keep_pod: bool, stack_flag: str
) -> None:
    head = (
        f"training runs on {target.label} (run {launched.run_id}, attempt {launched.attempt}); not following it"
        if by_request
        else f"detached: training keeps running on {target.label} (run {launched.run_id}, attempt {launched.attempt})"
    )
    say(head)
    if target.kind == TargetKind.POD:
        say(
            "the pod stops itself when training ends"
            if not keep_pod
            else "the pod keeps running after training (--keep-pod): stop it yourself"
        )
    for what, command in target.hints(stack_flag):
        say(f"  {what + ':':<20} {command}")


__all__ = [
    "stack_flag",
    "Price",
    "accounting_rows",
    "cost_rows",
    "cost_text",
    "gpu_rows",
    "announce_line",
    "detached_lines",
    "duration",
    "iso_seconds",
    "print_accounting",
    "summary",
]
