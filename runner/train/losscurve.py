"""The run's loss over steps: collected from the log or a checkpoint's trainer_state.json, drawn small.

Points come from
* the log lines training prints: `step 12/400 loss 0.53` (the smoke trainer), `loss=0.53`, or a
  Hugging Face Trainer's `{'loss': 0.53, 'grad_norm': ..., 'epoch': 0.1}`, whose step is the last one
  the line or its progress bar showed (LossCurve.feed);
* a checkpoint's `trainer_state.json` `log_history` (`{"step": 12, "loss": 0.53}`; from_log_history).

chart() draws them as a compact filled area chart, e.g.

    loss 2.0102 ┤█▅▂
                ┤███▆▄▂▁
                ┤███████▇▅▄▃▂▁
         0.9556 ┤██████████████████▇▆▅▄▃▂▁▁
                └ steps 1-40 · min 0.9556 at step 40 · last 0.9556
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from remote.podside.contract import is_launcher_line

Point = tuple[int, float]
MAX_POINTS = 400  # kept in the run record and in `status --json` (evenly thinned out beyond)
MAX_KEPT = 20_000  # points held while following a run (thinned to half beyond: memory stays bounded)

# The log is the pod's to write: what is parsed from it is bounded. A step has at most 15 digits (a
# longer number is not read as a step: Python refuses to convert over 4,300 digits), and a loss outside
# +-MAX_LOSS is not a training loss (+-1.7e308 made the chart's arithmetic overflow to nan).
STEP_NUMBER = r"(\d{1,15})(?!\d)"
MAX_LOSS = 1e12
_NUMBER = r"([-+]?(?:\d{1,30}\.?\d{0,30}|\.\d{1,30})(?:[eE][-+]?\d{1,4})?|nan|inf)"
_LOSS_RE = re.compile(r"(?<![A-Za-z0-9_])['\"]?loss['\"]?\s*[:=]?\s*" + _NUMBER, re.IGNORECASE)
_STEP_RE = re.compile(r"(?<![A-Za-z0-9_])(?:global_)?step['\"]?[\s=:]*" + STEP_NUMBER, re.IGNORECASE)
_BAR_RE = re.compile(r"(?<!\d)" + STEP_NUMBER + r"/\d{1,15} \[")


def plausible(step: int, loss: float) -> bool:
    """A point worth keeping and drawing: a finite loss within +-MAX_LOSS at a step of at most 15 digits."""
    return 0 <= step < 10**15 and math.isfinite(loss) and abs(loss) <= MAX_LOSS


_BLOCKS = " ▁▂▃▄▅▆▇█"


class LossCurve:
    """(step, loss) points in the order seen; one point per step (the last loss given for it)."""

    def __init__(self, points: Iterable[Point] = ()):
        self._points: dict[int, float] = {}
        self.step: int | None = None  # the last step the log showed (a bar's N counts)
        for step, loss in points:
            self.add(step, loss)

    def add(self, step: int, loss: float) -> None:
        if plausible(int(step), float(loss)):
            self._points[int(step)] = float(loss)
            if len(self._points) > MAX_KEPT:
                self._points = dict(thin(self.points, MAX_KEPT // 2))

    def feed(self, text: str) -> None:
        if is_launcher_line(text):
            return
        for part in text.split("\r"):
            steps = [int(m) for m in _STEP_RE.findall(part)] or [int(m) for m in _BAR_RE.findall(part)]
            if steps:
                self.step = steps[-1]
            m = _LOSS_RE.search(part)
            if m and self.step is not None:
                try:
                    self.add(self.step, float(m.group(1)))
                except ValueError:
                    pass

    @property
    def points(self) -> list[Point]:
        return sorted(self._points.items())

    def thinned(self, limit: int = MAX_POINTS) -> list[Point]:
        return thin(self.points, limit)


def thin(points: list[Point], limit: int = MAX_POINTS) -> list[Point]:
    """At most `limit` points, evenly spread, the first and the last always kept."""
    if len(points) <= limit:
        return list(points)
    idx = sorted({round(i * (len(points) - 1) / (limit - 1)) for i in range(limit)})
    return [points[i] for i in idx]


def from_log_history(history: Any) -> list[Point]:
    """The training loss points of a trainer_state.json's log_history (eval entries have no `loss`)."""
    out = LossCurve()
    for entry in history if isinstance(history, list) else []:
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("step"), int)
            and isinstance(entry.get("loss"), (int, float))
        ):
            out.add(entry["step"], float(entry["loss"]))
    return out.points


def summary(points: list[Point]) -> dict[str, Any] | None:
    """min / last / step range of the points (None without points): `status --json` training.loss."""
    if not points:
        return None
    low = min(points, key=lambda p: p[1])
    return {
        "first_step": points[0][0],
        "last_step": points[-1][0],
        "min": low[1],
        "min_step": low[0],
        "last": points[-1][1],
        "points": [[s, v] for s, v in points],
    }


def chart(points: list[Point], *, width: int = 48, height: int = 4) -> list[str]:
    """A filled area chart of loss over steps, `height` rows of block characters plus a legend row."""
    points = [(s, v) for s, v in points if plausible(s, v)]  # records and checkpoints hold pod data too
    if not points:
        return []
    columns = _columns(points, width)
    lo, hi = min(columns), max(columns)  # the scale of what is drawn (columns average their points)
    span = hi - lo
    levels = height * 8
    cells = [0 if span == 0 else round((v - lo) / span * (levels - 1)) + 1 for v in columns]
    if span == 0:
        cells = [levels // 2] * len(columns)
    top, bottom = f"{hi:.4g}", f"{lo:.4g}"
    pad = max(len(top), len(bottom))
    rows = []
    for r in range(height - 1, -1, -1):
        label = (top if r == height - 1 else bottom if r == 0 else "").rjust(pad)
        head = f"loss {label}" if r == height - 1 else f"     {label}"
        bar = "".join(_BLOCKS[max(0, min(8, c - r * 8))] for c in cells)
        rows.append(f"{head} ┤{bar}".rstrip())
    low = min(points, key=lambda p: p[1])
    rows.append(
        f"{' ' * (5 + pad)} └ steps {points[0][0]}-{points[-1][0]} · min {low[1]:.4g} at step {low[0]}"
        f" · last {points[-1][1]:.4g}"
    )
    return rows


def _columns(points: list[Point], width: int) -> list[float]:
    """One value per column over the step range (the mean of the points falling in it)."""
    if len(points) <= width:
        return [v for _, v in points]
    first, last = points[0][0], points[-1][0]
    buckets: list[list[float]] = [[] for _ in range(width)]
    for step, value in points:
        i = min(width - 1, int((step - first) * width / max(1, last - first + 1)))
        buckets[i].append(value)
    out, prev = [], points[0][1]
    for b in buckets:
        prev = sum(b) / len(b) if b else prev
        out.append(prev)
    return out


__all__ = [
    "MAX_LOSS",
    "MAX_POINTS",
    "STEP_NUMBER",
    "LossCurve",
    "Point",
    "chart",
    "from_log_history",
    "plausible",
    "summary",
    "thin",
]
