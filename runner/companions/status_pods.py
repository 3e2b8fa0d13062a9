"""`runner status` on a stack with several pods and none named: every pod and its run in one table.

Per pod: its state as RunPod says it (runner/pod/pod.py decides it), the newest run this machine
started on it, that run's step and loss (from the run's record: the log's `step N ... loss X` lines),
its recoveries and its cost so far, and each GPU's use now from the same API read (REST v2
`runtime.gpus`; "not reported" when RunPod leaves it out, never 0). `runner status --pod NAME` shows one
pod in full, as on a one-pod stack."""

from __future__ import annotations

import json

from runner.pod.choice import on_pod
from runner.pod.pod import StackPod
from runner.pod.stack_outputs import StackOutputs
from runner.settings import Settings
from runner.train import gpu_use, run_record


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
        pod = seen.pod if seen is not None else None
        running = pod is not None and pod.is_running
        out.append(
            {
                "pod": entry.name,
                "pod_id": entry.pod_id,
                "state": str(seen.state) if seen is not None else "unknown (API)",
                "run": record.run_id if record else None,
                "run_status": record.status if record else None,
                "step": int(last[0]) if last else None,
                "loss": float(last[1]) if last else None,
                "gpus": gpu_use.as_report(pod.gpu_use) if running and pod is not None else None,
                "recoveries": record.recoveries if record else 0,
                "cost_usd": record.estimated_cost_usd if record else None,
            }
        )
    return out


def _gpus(row: dict) -> str:
    """`87% 12%` per GPU while the pod runs; `-` when it does not; `not reported` when RunPod left it out."""
    if not row["state"].startswith("running"):
        return "-"
    gpus = row["gpus"]
    if not gpus:
        return "not reported"
    return " ".join(f"{g['util']}%" if g.get("util") is not None else "?" for g in gpus)


def render(found: list[dict], stack: str) -> str:
    head = ("pod", "id", "state", "run", "run status", "step", "loss", "GPU use", "recov.", "cost")
    cells = [
        (
            r["pod"],
            r["pod_id"],
            r["state"],
            r["run"] or "-",
            r["run_status"] or "-",
            "-" if r["step"] is None else str(r["step"]),
            "-" if r["loss"] is None else f"{r['loss']:.4g}",
            _gpus(r),
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
