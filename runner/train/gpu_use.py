"""How busy the pod's GPUs were, from the API reads the runner already makes (REST v2 `runtime.gpus[]`:
`util` and `memoryUtil` per GPU, backends/runpod/models.py GpuUse).

GpuReadings collects one attempt's readings as the API poll (runner/train/watch.py) makes them, from
its own thread; fold() adds them to the attempt's and the run's record. A read without utilization
(the API left `runtime` or its `gpus` out) counts as not reported, never as 0%. Text for the summary
and `runner status` is here too, with the hint when the GPUs mostly waited.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from backends.runpod.models import GpuUse

LOW_UTIL = 50.0  # percent: under this on average, the GPU waits more than it works
LOW_HINT = (
    "the GPU waited for work much of the time: data loading (or evaluation) may be the bottleneck; try more "
    "dataloader workers (dataloader_num_workers), data on the pod's disk, or a larger batch"
)
NOT_REPORTED = "not reported by RunPod's API"


@dataclass
class GpuMean:
    util: float | None  # mean utilization over the readings, percent (all GPUs of a reading averaged)
    memory: float | None  # mean memory in use, percent
    readings: int  # API reads that reported utilization
    unreported: int  # API reads of the running pod without it


class GpuReadings:
    """One attempt's readings (thread-safe: the API poll adds, the session folds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.util_sum = self.memory_sum = 0.0
        self.readings = self.memory_readings = self.unreported = 0

    def add(self, gpus: tuple[GpuUse, ...] | None) -> None:
        """One read of the running pod (gpus None: it reported no utilization)."""
        utils = [g.util for g in gpus or () if g.util is not None]
        mems = [g.memory_util for g in gpus or () if g.memory_util is not None]
        with self._lock:
            if not utils:
                self.unreported += 1
                return
            self.readings += 1
            self.util_sum += sum(utils) / len(utils)
            if mems:
                self.memory_readings += 1
                self.memory_sum += sum(mems) / len(mems)

    def take(self) -> GpuMean:
        """The attempt's mean so far, and a fresh start for the next attempt."""
        with self._lock:
            mean = GpuMean(
                round(self.util_sum / self.readings, 1) if self.readings else None,
                round(self.memory_sum / self.memory_readings, 1) if self.memory_readings else None,
                self.readings,
                self.unreported,
            )
            self.reset()
        return mean


def combine(means: list[GpuMean]) -> GpuMean:
    """The run's mean: every reading weighs the same, whichever attempt made it."""
    readings = sum(m.readings for m in means)
    with_memory = [m for m in means if m.memory is not None]
    memory_readings = sum(m.readings for m in with_memory)
    return GpuMean(
        round(sum((m.util or 0.0) * m.readings for m in means) / readings, 1) if readings else None,
        round(sum((m.memory or 0.0) * m.readings for m in with_memory) / memory_readings, 1)
        if memory_readings
        else None,
        readings,
        sum(m.unreported for m in means),
    )


def as_report(gpus: tuple[GpuUse, ...] | None) -> list[dict[str, int | None]] | None:
    """`runner status --json`'s pod.gpus: [{util, memory_util}] per GPU, null when not reported."""
    return [{"util": g.util, "memory_util": g.memory_util} for g in gpus] if gpus else None


def now_text(gpus: list[dict[str, int | None]] | None) -> str:
    """`runner status`: each GPU's utilization and memory now, e.g. `GPU 0 87% (memory 61%)`."""
    if not gpus:
        return NOT_REPORTED
    parts = []
    for i, g in enumerate(gpus):
        util, memory = g.get("util"), g.get("memory_util")
        shown = f"{util}%" if util is not None else "?"
        parts.append(f"GPU {i} {shown}" + (f" (memory {memory}%)" if memory is not None else ""))
    return ", ".join(parts)


def mean_text(mean: GpuMean) -> str:
    """The summary's line: `34% on average (memory 61%), 42 readings`, with the hint when low."""
    if mean.util is None:
        return NOT_REPORTED
    text = f"{mean.util:.0f}% on average" + (f" (memory {mean.memory:.0f}%)" if mean.memory is not None else "")
    text += f", {mean.readings} API reading{'s' if mean.readings != 1 else ''}"
    return text + (f"; {LOW_HINT}" if mean.util < LOW_UTIL else "")


def per_attempt_text(means: list[tuple[int, GpuMean]]) -> str:
    """`attempt 1 31%, attempt 2 38%` (not reported where an attempt had no reading)."""
    return ", ".join(
        f"attempt {n} {m.util:.0f}%" if m.util is not None else f"attempt {n} not reported" for n, m in means
    )


__all__ = [
    "LOW_UTIL",
    "NOT_REPORTED",
    "GpuMean",
    "GpuReadings",
    "as_report",
    "combine",
    "mean_text",
    "now_text",
    "per_attempt_text",
]
