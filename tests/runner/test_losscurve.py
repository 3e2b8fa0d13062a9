"""The loss curve (runner/train/losscurve.py): points from log lines and trainer_state.json, the chart."""

from __future__ import annotations

import re

from runner.train.losscurve import LossCurve, chart, from_log_history, summary, thin


def test_points_from_smoke_lines_hf_dicts_after_a_bar_and_not_from_eval_or_launcher_lines():
    c = LossCurve()
    c.feed("step 1/40 loss 2.5000")
    c.feed("\r  5%|#  | 2/40 [00:01<00:20, 2.0it/s]\r  7%|#  | 3/40 [00:01<00:19, 2.0it/s]")
    c.feed("{'loss': 1.25, 'grad_norm': 3.1, 'learning_rate': 5e-05, 'epoch': 0.08}")  # at the bar's step 3
    c.feed("{'eval_loss': 9.0, 'eval_runtime': 1.2, 'epoch': 0.08}")
    c.feed("[remote_train] loss 7 step 9 (a launcher note)")
    c.feed("global_step=5 train loss=0.75")
    assert c.points == [(1, 2.5), (3, 1.25), (5, 0.75)]


def test_log_history_keeps_training_loss_entries_only():
    history = [
        {"step": 10, "loss": 1.5},
        {"step": 10, "eval_loss": 2.0},
        {"step": 20, "loss": 1.0},
        {"loss": 3.0},
        "junk",
    ]
    assert from_log_history(history) == [(10, 1.5), (20, 1.0)]
    assert from_log_history(None) == []


def test_thinning_keeps_the_ends_and_the_limit():
    pts = [(s, float(s)) for s in range(1, 1001)]
    out = thin(pts, 50)
    assert len(out) == 50 and out[0] == (1, 1.0) and out[-1] == (1000, 1000.0)


def test_the_chart_shows_range_min_and_last():
    pts = [(s, 2.0 / s) for s in range(1, 101)]
    rows = chart(pts, width=40, height=4)
    assert len(rows) == 5
    # 40 columns of 2-3 steps each, scaled to their means: the first reaches the top, every one the bottom row
    assert re.match(r"loss +1\.222 ┤█", rows[0]) and re.match(r" +0\.0201 ┤[▁▂▃▄▅▆▇█]{40}$", rows[3]), rows
    assert all(len(r.split("┤")[1]) <= 40 for r in rows[:4])
    assert rows[-1].strip() == "└ steps 1-100 · min 0.02 at step 100 · last 0.02"
    assert summary(pts)["min_step"] == 100 and summary([]) is None
    assert chart([]) == []
