"""`runner status` on a stack with several pods and none named: every pod and its run in one table.

Per pod: its state as RunPod says it (runner/pod/pod.py decides it), the newest run this machine
started on it, that run's step and loss (from the run's record: the log's `step N ... loss X` lines),
its recoveries and its cost so far. `runner status --pod NAME` shows one pod in full, as on a one-pod
stack. GPU use needs the pod (nvidia-smi); the full status of a running pod shows it."""

from __future__ import annotations

import json

from runner.pod.choice import on_pod
from runner.pod.pod import StackPod
from runner.pod.stack import StackOutputs
from runner.settings import Settings
from runner.train import run_record


def rows(settings: Settings, outputs: StackOutputs) -> list[dict]:
    newest: dict[str, run_record.RunRecord] = {}
    for each in run_record.all_records(settings.paths):  # newest first
        if each.pod and each.pod not in newest:
            newest[each.pod] = each
    out = []
    for entry in outputs.pods:
        pod_settings = on_pod(settings, entry)
        seen = StackPod.of(pod_settings, outputs=outputs.for_pod(entry.name)).observe()
        record = newest.get(entry.name)
        last = record.loss_points[-1] if record is not None and record.loss_points else None
        out.append(
            {
                "pod": entry.name,
                "pod_id": entry.pod_id,
                "state": str(seen.state) if seen is not None else "unknown (API)",
                "run": record.run_id if record else None,
                "run_status": record.status if record else None,
                "step": int(last[0]) if last else None,
                "loss": float(last[1]) if last else None,
                "recoveries": record.recoveries if record else 0,
                "cost_usd": record.estimated_cost_usd if record else None,
            }
        )
    return out


def render(found: list[dict], stack: str) -> str:
    head = ("pod", "id", "state", "run", "run status", "step", "loss", "recov.", "cost")
    cells = [
        (
            r["pod"],
            r["pod_id"],
            r["state"],
            r["run"] or "-",
            r["run_status"] or "-",
            "-" if r["step"] is None else str(r["step"]),
            "-" if r["loss"] is None else f"{r['loss']:.4g}",
            str(r["recoveries"]),
            "-" if r["cost_usd"] is None else f"${r['cost_usd']:.2f}",
        )
        for r in found
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *cells)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in (head, *cells)]
    total = sum(r["cost_usd"] or 0.0 for r in found)
    return "\n".join(
        [f"stack {stack}: {len(found)} pods on one volume; runs' cost so far ${total:.2f}", *lines]
        + ["One pod in full: `runner status --pod NAME`."]
    )


def show(settings: Settings, outputs: StackOutputs, as_json: bool) -> str:
    from runner import termtext

    found = rows(settings, outputs)
    if as_json:
        return json.dumps({"stack": outputs.stack, "pods": found}, indent=2)
    return render(termtext.clean_values(found), outputs.stack)  # run ids may come from the pod
