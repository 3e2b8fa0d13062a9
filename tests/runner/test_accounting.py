"""The accounting's arithmetic (runner/train/accounting.py) and its lines (runner/train/report.py), in process."""

from __future__ import annotations

from types import SimpleNamespace

from runner.train import report
from runner.train.accounting import BillingLedger, StepProgress
from runner.train.run_record import RunRecord
from runner.types import TargetKind


def progress(lines: list[tuple[str, float]], started: float = 100.0) -> StepProgress:
    p = StepProgress(started)
    for text, when in lines:
        p.feed(text, now=when)
    return p


def test_nothing_lost_means_no_time_redone_either():
    p = progress([("step 1/10 loss 2", 101.0), ("step 2/10 loss 1", 102.0), ("saved checkpoint-2", 102.1)])
    assert p.lost_since(2, stopped_at=150.0) == (0, 0.0)  # not the whole attempt's 50 s


def test_steps_lost_are_last_seen_minus_resumed_and_their_time_comes_from_their_lines():
    p = progress([(f"step {n}/40 loss 1", 100.0 + n) for n in range(1, 18)])
    # resumed from checkpoint-10: steps 11..17 are redone, and they took from step 10's line to 17's
    assert p.lost_since(10, stopped_at=160.0) == (7, 7.0)


def test_every_redraw_of_a_bar_counts_and_the_last_one_is_the_step_reached():
    p = StepProgress(0.0)
    p.feed("\r 25%|##  | 10/40 [00:01<00:03, 9.1it/s]\r 27%|##  | 11/40 [00:01<00:03, 9.1it/s]", now=11.0)
    p.feed("\r                \rstep 12/40 loss 0.5", now=12.0)
    p.feed("\r 32%|###  | 13/40 [00:01<00:03, 9.1it/s]", now=13.0)
    assert p.max_step == 13
    assert p.lost_since(10, stopped_at=20.0) == (3, 2.0)


def test_lines_read_late_count_as_steps_and_their_time_follows_the_live_pace():
    p = progress([(f"step {n}/40", 100.0 + 2 * n) for n in range(1, 11)])  # 2 s a step, seen live
    for n in range(11, 15):  # the unread tail, printed later
        p.feed(f"step {n}/40", live=False)
    assert p.max_step == 14
    # resumed from checkpoint-10 (its line at 120): steps 11..14 at 2 s each
    assert p.lost_since(10, stopped_at=500.0) == (4, 8.0)


def test_launcher_lines_are_not_steps():
    p = progress([("[remote_train] step 99 of the launcher", 1.0), ("===== t run=r attempt=3 ...", 2.0)])
    assert p.max_step is None and p.lost_since(None, 10.0) == (0, 0.0)


def test_the_cost_is_shown_per_market_when_a_run_moved_to_on_demand():
    ledger = BillingLedger()
    ledger.open(0.0, 0.35, "spot")
    ledger.close(600.0)
    ledger.open(700.0, 0.35, "spot")
    ledger.close(1300.0)
    ledger.open(1400.0, None, "on-demand")
    ledger.reprice(0.69)
    ledger.close(2000.0)
    prices = [report.Price(*p) for p in ledger.by_price(2000.0)]
    assert [(p.market, p.rate_per_hr, p.seconds) for p in prices] == [
        ("spot", 0.35, 1200.0),
        ("on-demand", 0.69, 600.0),
    ]
    rec = RunRecord(run_id="r", stack="dev", target=TargetKind.POD, target_name="pod x", config="c.yaml")
    rec.estimated_cost_usd, rec.pod_seconds = ledger.dollars(2000.0), 1800.0
    target = SimpleNamespace(kind=TargetKind.POD, cost_per_hr=0.69)
    text = report.cost_text(rec, target, prices)
    assert text == (
        "about $0.2317 for this run (spot $0.350/h x 20m 00s = $0.1167; on-demand $0.690/h x 10m 00s = $0.1150)"
    )
    # one market and price: the short form, with that price (not the target's current one)
    assert report.cost_text(rec, target, prices[:1]).startswith("about $0.2317 ($0.350/h x 30m 00s")
