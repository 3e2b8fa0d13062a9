"""The sweep's one status and its summary table, from the sweep record and each run's record on this
machine (runner/train/run_record.py): state, pod, step, loss, checkpoint, cost per run, and totals."""

from __future__ import annotations

import json
from dataclasses import dataclass

from runner.settings import Settings
from runner.sweep.plan import describe
from runner.sweep.record import SweepRecord
from runner.train import run_record


@dataclass(frozen=True)
class Row:
    run_id: str
    values: str
    state: str
    pod: str
    step: int | None
    loss: float | None
    checkpoint: str | None
    cost_usd: float | None
    recoveries: int


def rows(settings: Settings, sweep: SweepRecord) -> list[Row]:
    out = []
    for run in sweep.runs:
        rec = run_record.load(settings.paths, run.run_id)
        last = rec.loss_points[-1] if rec is not None and rec.loss_points else None
        out.append(
            Row(
                run_id=run.run_id,
                values=describe(run.values),
                state=run.state,
                pod=run.pod or "-",
                step=int(last[0]) if last else None,
                loss=float(last[1]) if last else None,
                checkpoint=rec.last_checkpoint if rec is not None else None,
                cost_usd=rec.estimated_cost_usd if rec is not None else None,
                recoveries=rec.recoveries if rec is not None else 0,
            )
        )
    return out


def table(settings: Settings, sweep: SweepRecord) -> str:
    found = rows(settings, sweep)
    head = ("run", "values", "state", "pod", "step", "loss", "recov.", "cost", "checkpoint")
    cells = [
        (
            r.run_id,
            r.values,
            r.state,
            r.pod,
            "-" if r.step is None else str(r.step),
            "-" if r.loss is None else f"{r.loss:.4g}",
            str(r.recoveries),
            "-" if r.cost_usd is None else f"${r.cost_usd:.2f}",
            (r.checkpoint or "-").rsplit("/", 1)[-1],
        )
        for r in found
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *cells)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in (head, *cells)]
    states: dict[str, int] = {}
    for r in found:
        states[r.state] = states.get(r.state, 0) + 1
    total = sum(r.cost_usd or 0.0 for r in found)
    best = min((r for r in found if r.loss is not None), key=lambda r: r.loss or 0.0, default=None)
    summary = f"sweep {sweep.sweep_id}: " + ", ".join(f"{n} {s}" for s, n in states.items())
    summary += f"; cost ${total:.2f}" + (f" of ${sweep.budget_usd:.2f}" if sweep.budget_usd is not None else "")
    if best is not None:
        summary += f"; lowest final loss {best.loss:.4g}: {best.run_id} ({best.values})"
    if sweep.stopped:
        summary += f"; stopped: {sweep.stopped}"
    return "\n".join([summary, *lines])


def as_json(settings: Settings, sweep: SweepRecord) -> str:
    return json.dumps(
        {"sweep_id": sweep.sweep_id, "stopped": sweep.stopped, "runs": [r.__dict__ for r in rows(settings, sweep)]}
    )
