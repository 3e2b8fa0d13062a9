"""What a run costs and what preemptions cost it: pod time in billing segments, and training steps.

BillingLedger: pod time as segments (a preempted pod bills nothing until it runs again), each at
the hourly price of the pod it was on, so a run that moved from spot to on-demand adds up right.
StepProgress: the highest training step seen in one attempt's log lines and when each step first
showed up, so that the steps and time redone after a resume can be reported.
Accounts: both, written into the run record (runner/train/run_record.py) as the session goes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from remote.podside.contract import checkpoint_step, is_launcher_line
from runner.pod.pod import Seen
from runner.pod.state import PodState
from runner.timestamps import utc_time
from runner.train.gpu_use import GpuMean, GpuReadings, combine
from runner.train.losscurve import STEP_NUMBER
from runner.train.run_record import AttemptRecord, RunRecord


@dataclass
class Segment:
    start: float
    rate_per_hr: float | None
    end: float | None = None
    market: str | None = None  # spot | on-demand, as the stack said when the segment opened

    def seconds(self, now: float) -> float:
        return max(0.0, (self.end if self.end is not None else now) - self.start)

    def dollars(self, now: float) -> float:
        return (self.rate_per_hr or 0.0) * self.seconds(now) / 3600.0


@dataclass
class BillingLedger:
    """Pod time of one command, in segments. open() is idempotent while a segment is open."""

    segments: list[Segment] = field(default_factory=list)

    @property
    def open_segment(self) -> Segment | None:
        return self.segments[-1] if self.segments and self.segments[-1].end is None else None

    def open(self, when: float, rate_per_hr: float | None, market: str | None = None) -> None:
        if self.open_segment is None:
            self.segments.append(Segment(when, rate_per_hr, market=market))

    def reprice(self, rate_per_hr: float | None, market: str | None = None) -> None:
        """The open segment's price became known (the API reports it once the pod runs)."""
        seg = self.open_segment
        if seg is not None and rate_per_hr:
            seg.rate_per_hr = rate_per_hr
        if seg is not None and market:
            seg.market = market

    def by_price(self, now: float) -> list[tuple[str | None, float | None, float, float]]:
        """(market, $/h, seconds, dollars) per distinct market and price, in the order first used."""
        out: dict[tuple[str | None, float | None], list[float]] = {}
        for s in self.segments:
            acc = out.setdefault((s.market, s.rate_per_hr), [0.0, 0.0])
            acc[0] += s.seconds(now)
            acc[1] += s.dollars(now)
        return [(market, rate, secs, usd) for (market, rate), (secs, usd) in out.items()]

    def close(self, when: float) -> None:
        seg = self.open_segment
        if seg is not None:
            seg.end = max(seg.start, when)

    def seconds(self, now: float) -> float:
        return sum(s.seconds(now) for s in self.segments)

    def dollars(self, now: float) -> float | None:
        """Estimated dollars so far; None when nothing had a price."""
        if not any(s.rate_per_hr for s in self.segments):
            return None
        return sum(s.dollars(now) for s in self.segments)


# "step 12/400", "global_step=120", "Step: 7" (not "max_steps"); tqdm bars: " 12/400 [00:03<..."
STEP_RE = re.compile(r"(?<![A-Za-z0-9_])(?:global_)?step[\s=:]*" + STEP_NUMBER, re.IGNORECASE)
TQDM_RE = re.compile(r"(?<!\d)" + STEP_NUMBER + r"/(\d{1,15}) \[")
MAX_STEPS_TIMED = 20_000  # steps whose arrival time is kept (thinned to half beyond)


class StepProgress:
    """Pragmatic: the smoke trainer prints `step N/M`, many trainers print `step N` or `global_step=N`,
    and a tqdm bar ends its (\\r-joined) line with `N/M [`. Lines of the launcher are ignored.

    Each step keeps the time its log line arrived; lines read late (the unread end of an interrupted
    attempt, printed once the pod is back) get no time of their own, theirs is extrapolated at the
    pace of the steps seen live."""

    def __init__(self, started: float):
        self.started = started
        self.max_step: int | None = None
        self.first_seen: dict[int, float] = {}

    def feed(self, text: str, now: float | None = None, *, live: bool = True) -> None:
        if is_launcher_line(text):
            return
        steps: list[int] = []
        for part in text.split("\r"):  # every redraw of a bar counts, not just the last
            steps += [int(m.group(1)) for m in STEP_RE.finditer(part)] or [
                int(m.group(1)) for m in TQDM_RE.finditer(part)
            ]
        if not steps:
            return
        step = max(steps)
        if live:
            when = time.time() if now is None else now
            for n in steps:
                self.first_seen.setdefault(n, when)
            if len(self.first_seen) > MAX_STEPS_TIMED:  # bounded whatever the log holds; the pace survives
                kept = sorted(self.first_seen.items())
                self.first_seen = dict(kept[::2] + [kept[-1]])
        if self.max_step is None or step > self.max_step:
            self.max_step = step

    def _when(self, step: int) -> float | None:
        """When `step` showed up: seen live, or extrapolated from the live pace; None if unknown."""
        if step in self.first_seen:
            return self.first_seen[step]
        seen = sorted(self.first_seen.items())
        if len(seen) < 2:
            return seen[0][1] if seen else None
        (s0, t0), (s1, t1) = seen[0], seen[-1]
        pace = (t1 - t0) / (s1 - s0) if s1 > s0 else 0.0
        anchor_s, anchor_t = (s0, t0) if step < s0 else (s1, t1)
        return anchor_t + (step - anchor_s) * pace

    def lost_since(self, resume_step: int | None, stopped_at: float) -> tuple[int, float]:
        """(steps, seconds) of work done after the checkpoint the next attempt resumes from: the
        steps from there to the last one seen, and the time between their log lines (0 if none)."""
        base = resume_step or 0
        steps = max(0, (self.max_step or base) - base)
        if not steps or self.max_step is None:
            return 0, 0.0
        end, begin = self._when(self.max_step), self._when(base)
        if end is None or begin is None:
            return steps, 0.0  # no step line arrived live: no time to measure
        end, begin = min(end, stopped_at), max(begin, self.started)
        return steps, round(max(0.0, end - begin), 1)


class Accounts:
    """The run record's accounting, kept as the session goes: pod time and cost per attempt (from the
    ledger), interruptions, and the work lost to them (from the steps seen)."""

    def __init__(self, record: RunRecord, *, on_pod: bool, gpu_count: int | None):
        self.record = record
        self.on_pod = on_pod
        self.gpu_count = gpu_count or 1
        self.ledger = BillingLedger()
        self.progress = StepProgress(time.time())  # training steps seen in the current attempt
        # Pod time and cost of earlier commands on this run id; the record keeps the run's totals.
        self.base_s, self.base_usd = record.pod_seconds or 0.0, record.estimated_cost_usd or 0.0
        self._mark_s = self._mark_usd = 0.0  # pod time/cost at the end of the previous attempt
        self.pending: AttemptRecord | None = None  # interrupted attempt, loss not settled yet
        self.earlier_steps: list[dict[int, float]] = []  # step arrival times of this command's earlier attempts
        self.gpu = GpuReadings()  # the current attempt's, from the API poll while following

    def step_arrivals(self) -> list[dict[int, float]]:
        """When each step's line arrived, one mapping per attempt of this command."""
        return [*self.earlier_steps, self.progress.first_seen]

    def gpu_seen(self, seen: Seen) -> None:
        """One API read while following (the poll's thread): the GPUs' utilization, when the pod runs."""
        if seen.pod is not None and seen.pod.is_running:
            self.gpu.add(seen.pod.gpu_use)

    def fold_gpu(self, a: AttemptRecord | None) -> None:
        """The attempt's readings into its record and the run's mean."""
        mean = self.gpu.take()
        if a is not None and (mean.readings or mean.unreported):
            before = GpuMean(a.gpu_util, a.gpu_memory, a.gpu_readings or 0, a.gpu_unreported or 0)
            both = combine([before, mean])
            a.gpu_util, a.gpu_memory, a.gpu_readings, a.gpu_unreported = (
                both.util,
                both.memory,
                both.readings,
                both.unreported,
            )
        done = [
            GpuMean(x.gpu_util, x.gpu_memory, x.gpu_readings or 0, x.gpu_unreported or 0)
            for x in self.record.attempts
            if x.gpu_readings
        ]
        run = combine(done)
        self.record.gpu_util, self.record.gpu_memory, self.record.gpu_readings = run.util, run.memory, run.readings

    def spent(self, now: float) -> float | None:
        """Estimated dollars of pod time used by this command, across all its attempts."""
        return self.ledger.dollars(now) if self.on_pod else None

    def attempt_costs(self, a: AttemptRecord | None, now: float) -> None:
        """Pod time and cost since the previous attempt ended (so a recovery's boot counts for the
        attempt it brought up)."""
        if not self.on_pod:
            return
        self.fold_gpu(a)
        secs, usd = self.ledger.seconds(now), self.ledger.dollars(now) or 0.0
        if a is not None:
            a.pod_seconds = round(secs - self._mark_s, 1)
            a.cost_usd = round(usd - self._mark_usd, 4)
        self._mark_s, self._mark_usd = secs, usd

    def interrupted(
        self, a: AttemptRecord | None, kind: str, now: float, *, billing_stopped: bool, cost_per_hr: float | None
    ) -> None:
        """An attempt ended early: what stopped it, its pod time, its progress (the loss is settled
        once we know which checkpoint the next attempt resumes from)."""
        if billing_stopped:
            self.ledger.close(now)  # a stopped pod bills nothing until it runs again
        if kind in (PodState.PREEMPTED, PodState.GONE):
            self.record.preemptions = (self.record.preemptions or 0) + 1
        if a is not None:
            a.interruption = str(kind)
            a.detected_at = utc_time(now)
            a.last_step = self.progress.max_step
        self.attempt_costs(a, now)
        self.pending = a
        self.close_billing(now, close=False, cost_per_hr=cost_per_hr)

    def settle_loss(self, resume_from: str | None, stopped_at: float) -> None:
        a, self.pending = self.pending, None
        if a is None:
            return
        steps, seconds = self.progress.lost_since(checkpoint_step(resume_from), stopped_at)
        a.last_step = self.progress.max_step
        a.steps_lost, a.seconds_lost = steps, seconds
        r = self.record
        r.steps_lost = sum(x.steps_lost or 0 for x in r.attempts)
        r.seconds_lost = round(sum(x.seconds_lost or 0.0 for x in r.attempts), 1)
        self.earlier_steps.append(self.progress.first_seen)
        self.progress = StepProgress(time.time())

    def close_billing(self, stopped_at: float | None, *, cost_per_hr: float | None, close: bool = True) -> None:
        """The run's totals in the record: earlier commands on this run id + this one so far.
        close=False counts the open segment without ending it (the pod keeps running)."""
        if not self.on_pod:
            return
        until = stopped_at or time.time()
        if close:
            self.ledger.close(until)
        r = self.record
        r.pod_seconds = round(self.base_s + self.ledger.seconds(until), 1)
        r.cost_per_hr = cost_per_hr
        spent = self.ledger.dollars(until)
        r.estimated_cost_usd = (
            round(self.base_usd + spent, 4)
            if spent is not None
            else (round(self.base_usd, 4) if self.base_usd else None)
        )
        r.gpu_count = self.gpu_count
        r.gpu_hours = round(r.pod_seconds * self.gpu_count / 3600.0, 4)


__all__ = ["Accounts", "BillingLedger", "Segment", "StepProgress"]
