"""The end-of-run checkpoint-interval suggestion (runner/train/checkpoint_advice.py): Young/Daly from what
the run showed, only when it cuts the expected lost work by more than 20%, in the config's save_steps."""

from __future__ import annotations

import math

import pytest

from runner.train.checkpoint_advice import expected_loss, step_and_save_cost, suggest


def arrivals(steps: int, step_s: float, save_steps: int, save_s: float, start: float = 1000.0) -> dict[int, float]:
    """When each step's line arrives: steps take step_s, and a save after step k delays step k+1."""
    t, out = start, {}
    for n in range(1, steps + 1):
        t += step_s + (save_s if (n - 1) > 0 and (n - 1) % save_steps == 0 else 0.0)
        out[n] = t
    return out


def test_step_time_and_save_cost_come_from_the_step_lines():
    step, cost = step_and_save_cost([arrivals(200, 0.5, 50, 12.0)], 50)
    assert step == pytest.approx(0.5)
    assert cost == pytest.approx(12.0)


def test_lines_every_few_steps_still_give_the_save_cost():
    seen = arrivals(200, 0.5, 50, 12.0)
    every_10 = {n: t for n, t in seen.items() if n % 10 == 0}  # logging_steps 10
    step, cost = step_and_save_cost([every_10], 50)
    assert step == pytest.approx(0.5) and cost == pytest.approx(12.0)


def test_suggests_young_daly_in_save_steps_when_it_cuts_the_loss_by_more_than_a_fifth():
    # saves of 12 s every 50 steps of 0.5 s (25 s of steps), one interruption per hour of pod time
    advice = suggest(50, [arrivals(400, 0.5, 50, 12.0)], pod_seconds=2 * 3600.0, interruptions=2)
    assert advice is not None
    best_s = math.sqrt(2 * 12.0 * 3600.0)  # ~294 s
    assert advice.suggested_steps == round(best_s / 0.5)
    assert advice.loss_suggested < 0.8 * advice.loss_now
    assert advice.loss_now == pytest.approx(expected_loss(25.0, 12.0, 3600.0))
    text = advice.text()
    assert "save_steps 50 -> about 588" in text and "Young/Daly" in text


def test_no_suggestion_when_the_interval_is_already_close():
    # best interval ~294 s of steps: 600 steps of 0.5 s is within 20% of the optimum's loss
    assert suggest(600, [arrivals(1300, 0.5, 600, 12.0)], pod_seconds=2 * 3600.0, interruptions=2) is None


@pytest.mark.parametrize(
    ("save_steps", "pod_seconds", "interruptions", "seen"),
    [
        (None, 7200.0, 2, arrivals(400, 0.5, 50, 12.0)),  # the config has no save_steps
        (50, 7200.0, 0, arrivals(400, 0.5, 50, 12.0)),  # no interruption: no rate to go by
        (50, None, 2, arrivals(400, 0.5, 50, 12.0)),  # no pod time (local run)
        (50, 7200.0, 2, arrivals(40, 0.5, 50, 12.0)),  # no save seen
        (True, 7200.0, 2, arrivals(400, 0.5, 50, 12.0)),  # not a step count
    ],
)
def test_no_suggestion_without_the_facts(save_steps, pod_seconds, interruptions, seen):
    assert suggest(save_steps, [seen], pod_seconds, interruptions) is None


def test_attempts_are_measured_separately():
    # the gap between two attempts (a preemption) is not a step
    first = arrivals(120, 0.5, 50, 12.0)
    second = arrivals(120, 0.5, 50, 12.0, start=first[120] + 900.0)
    step, cost = step_and_save_cost([first, second], 50)
    assert step == pytest.approx(0.5) and cost == pytest.approx(12.0)
