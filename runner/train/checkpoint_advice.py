"""A checkpoint interval for the end-of-run summary, when the run showed that another one would lose
clearly less work to interruptions (Young/Daly: interval ~ sqrt(2 * save cost * mean time between
interruptions)).

From what the run showed: the time per step and the cost of a save from when the step lines arrived
(a save delays the step after it; runner/train/accounting.py StepProgress keeps the arrival times),
and the mean time between interruptions from the run's pod time and its preemptions. Expected work
lost per unit of training time with an interval of T seconds of steps: C/T (saving) + T/(2M) (the half
interval redone after each interruption, on average). A suggestion is made only when the best
interval would cut that by more than MIN_CUT, in the config's own unit (`save_steps`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_CUT = 0.20  # suggest only when the expected loss drops by more than this share
MIN_STEP_SAMPLES = 3


@dataclass(frozen=True)
class IntervalAdvice:
    save_steps: int  # the config's
    suggested_steps: int
    step_s: float
    save_cost_s: float
    mtbi_s: float  # mean pod time between interruptions
    loss_now: float  # expected share of training time lost, at the config's interval
    loss_suggested: float

    def text(self) -> str:
        return (
            f"save_steps {self.save_steps} -> about {self.suggested_steps}: a save took ~{self.save_cost_s:.1f} s, "
            f"a step ~{self.step_s:.2f} s, and this run was interrupted every ~{_hours(self.mtbi_s)} of pod time; "
            f"expected work lost to saves and redone steps {100 * self.loss_now:.1f}% -> "
            f"{100 * self.loss_suggested:.1f}% (Young/Daly: interval = sqrt(2 x save cost x time between "
            "interruptions))"
        )


def _hours(seconds: float) -> str:
    from runner.output import duration

    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else duration(seconds)


def expected_loss(interval_s: float, save_cost_s: float, mtbi_s: float) -> float:
    return save_cost_s / interval_s + interval_s / (2 * mtbi_s)


def step_and_save_cost(arrivals: Iterable[Mapping[int, float]], save_steps: int) -> tuple[float, float] | None:
    """(seconds per step, seconds per save) from the arrival times of step lines, one mapping per
    attempt; None when the run showed too little (no interval with a save, too few without)."""
    plain: list[float] = []
    with_save: list[tuple[int, float]] = []
    for seen in arrivals:
        steps = sorted(seen)
        for m, n in zip(steps, steps[1:]):
            gap = seen[n] - seen[m]
            saves = sum(1 for k in range(m, n) if k > 0 and k % save_steps == 0)
            if saves == 0:
                plain.append(gap / (n - m))
            elif saves == 1:
                with_save.append((n - m, gap))
    if len(plain) < MIN_STEP_SAMPLES or not with_save:
        return None
    step = statistics.median(plain)
    cost = statistics.median(max(0.0, gap - k * step) for k, gap in with_save)
    return step, cost


def suggest(
    save_steps: object,
    arrivals: Iterable[Mapping[int, float]],
    pod_seconds: float | None,
    interruptions: int | None,
) -> IntervalAdvice | None:
    if not isinstance(save_steps, int) or isinstance(save_steps, bool) or save_steps < 1:
        return None
    if not interruptions or not pod_seconds:
        return None
    measured = step_and_save_cost(arrivals, save_steps)
    if measured is None:
        return None
    step, cost = measured
    if step <= 0 or cost <= 0:
        return None
    mtbi = pod_seconds / interruptions
    now = save_steps * step
    best = math.sqrt(2 * cost * mtbi)
    steps = max(1, round(best / step))
    loss_now, loss_best = expected_loss(now, cost, mtbi), expected_loss(steps * step, cost, mtbi)
    if loss_best >= (1 - MIN_CUT) * loss_now or steps == save_steps:
        return None
    return IntervalAdvice(save_steps, steps, step, cost, mtbi, loss_now, loss_best)


__all__ = ["IntervalAdvice", "expected_loss", "step_and_save_cost", "suggest"]
